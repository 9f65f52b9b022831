#include "fd_passing.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "edge.h"

namespace caphost {
namespace {

constexpr size_t kMaxMessage = 1 << 20;

#if defined(__linux__)
constexpr int MSG_CMSG_CLOEXEC_FLAG = MSG_CMSG_CLOEXEC;
#else
constexpr int MSG_CMSG_CLOEXEC_FLAG = 0;
#endif

// SOCK_SEQPACKET keeps message boundaries, so a reply and the descriptor it carries arrive
// together. Both ends are close-on-exec; the child's end is passed by spawn's stdio, which
// dup2()s it into place without the flag.
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    int fds[2];
#if defined(__linux__)
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) throw SysError("socketpair", "cannot create a socket pair");
#else
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) throw SysError("socketpair", "cannot create a socket pair");
#endif
    Napi::Array out = Napi::Array::New(info.Env(), 2);
    out.Set(0u, fds[0]);
    out.Set(1u, fds[1]);
    return out;
  });
}

// sendMessage(fd, bytes, passFd = -1): one message, blocking until the kernel takes it.
Napi::Value SendMessage(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const int fd = ArgFd(info, 0);
    Bytes bytes = ArgBytes(info, 1, "bytes");
    if (bytes.length == 0 || bytes.length > kMaxMessage) throw InvalidArgument("a message is 1 byte to 1 MiB");
    int pass = -1;
    if (info.Length() > 2 && !info[2].IsUndefined()) pass = static_cast<int>(ArgInteger(info, 2, "passFd", -1, 0x7fffffff));
    iovec iov{bytes.data, bytes.length};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (pass >= 0) {
      std::memset(control, 0, sizeof(control));
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &pass, sizeof(int));
    }
    ssize_t n;
    do {
      n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw SysError("sendmsg", "cannot send to the worker");
    return info.Env().Undefined();
  });
}

// recvMessage(fd) → { bytes: Buffer, fd: number } (fd -1 when none came), blocking.
Napi::Value RecvMessage(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const int fd = ArgFd(info, 0);
    std::vector<char> buf(kMaxMessage);
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n;
    do {
      n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC_FLAG);
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw SysError("recvmsg", "cannot receive from the controller");
    if (n == 0) throw CodedError("NATIVE_ERROR", "the controller closed the device channel");
    int received = -1;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) std::memcpy(&received, CMSG_DATA(c), sizeof(int));
    }
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("bytes", Napi::Buffer<char>::Copy(info.Env(), buf.data(), static_cast<size_t>(n)));
    out.Set("fd", received);
    return out;
  });
}

}  // namespace

void RegisterFdPassing(Napi::Env env, Napi::Object exports) {
  exports.Set("socketPair", Napi::Function::New(env, SocketPair));
  exports.Set("sendMessage", Napi::Function::New(env, SendMessage));
  exports.Set("recvMessage", Napi::Function::New(env, RecvMessage));
}

}  // namespace caphost
