// A TCP server driven from Node's own event loop (libuv's uv_poll on each socket) with plain
// syscalls: accept, read and sendmsg. One JS callback per event, no streams. node:net's Socket
// put every read through Readable and a new Buffer, and every write through Writable, StreamBase
// and a WriteWrap; `caphost serve` answers a request in a few tens of µs, and in an A/B at 64
// connections this server (with the parser changes of the same commit) took the event loop from
// 27.3-28.5 to 26.5-26.9 µs of CPU per request and served 2-5% more requests per second.
//
// Events reach JS as onEvent(kind, id, value, length): CONNECTION, SLAB (value: the Buffer that
// DATA events point into from now on), DATA (value: offset in the slab, length: bytes), END
// (the peer will send nothing more), DRAIN (bytes that waited are written) and CLOSE (value:
// errno, or 0), which comes exactly once per connection, after which its id is unknown. CLOSE
// always comes from the loop, never from inside a call from JS.
//
// Reads go into a slab, a Buffer shared with JS, one after the other; a slab is never written
// twice, so what JS keeps of a read stays valid, and a full slab is replaced by a new one (GC
// frees the old one once no view of it is left). A Buffer per read cost more than the read.
#include <napi.h>
#include <uv.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <unordered_map>

#include "../core/edge.h"

namespace caphost {
namespace {

enum Event { kConnection = 0, kData = 1, kEnd = 2, kDrain = 3, kClose = 4, kSlab = 5 };

// Reads per readiness event before the loop looks at other sockets: a fast sender must not
// starve the rest.
constexpr int kReadsPerEvent = 4;
constexpr size_t kSlabBytes = 128 * 1024;
// A slab with less room than this is replaced before a read.
constexpr size_t kMinRead = 16 * 1024;
// Accepts per readiness event, for the same reason.
constexpr int kAcceptsPerEvent = 64;

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0  // macOS: SO_NOSIGPIPE is set on each socket instead
#endif

struct Server;

struct Conn {
  uv_poll_t poll;
  Server* server;
  int fd;
  uint32_t id;
  int events = 0;
  bool paused = false;
  bool eof = false;
  bool ending = false;  // shut down writing once `pending` is written
  bool closing = false;
  int error = 0;
  std::string pending;  // bytes accepted by write() and not yet taken by the kernel
  size_t pendingAt = 0;
};

struct Server {
  napi_env env;
  uv_loop_t* loop;
  napi_ref onEvent = nullptr;
  napi_ref self = nullptr;  // strong while any handle is open, so GC cannot run the destructor under them
  napi_async_context context = nullptr;
  uv_poll_t listenPoll;
  uv_timer_t acceptPause;  // after EMFILE: a level-triggered poll would spin on the backlog
  int listenFd = -1;
  bool listenOpen = false;
  // uv handles initialised and not yet through their close callback; the Server is freed at 0.
  int handles = 0;
  bool orphaned = false;  // the JS object is gone: free this once the last handle closes
  uint32_t nextId = 1;
  std::unordered_map<uint32_t, Conn*> conns;
  napi_ref slab = nullptr;
  char* slabData = nullptr;
  size_t slabUsed = kSlabBytes;
  std::string scratchHead, scratchBody;
};

void MaybeFree(Server* s);

// Calls onEvent as an async callback: microtasks and process.nextTick run after it, as they do
// after a node:net 'data' event. A throw becomes an uncaught exception, as it would there.
void Emit(Server* s, Event kind, uint32_t id, napi_value value, double length = 0) {
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn, recv, argv[4], result;
  if (s->onEvent != nullptr && napi_get_reference_value(env, s->onEvent, &fn) == napi_ok && fn != nullptr) {
    napi_get_global(env, &recv);  // napi_make_callback wants an object
    napi_create_uint32(env, kind, &argv[0]);
    napi_create_uint32(env, id, &argv[1]);
    if (value != nullptr) argv[2] = value;
    else napi_get_undefined(env, &argv[2]);
    napi_create_double(env, length, &argv[3]);
    if (napi_make_callback(env, s->context, recv, fn, 4, argv, &result) == napi_pending_exception) {
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
}

void EmitNumber(Server* s, Event kind, uint32_t id, double n) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(s->env, &scope) != napi_ok) return;
  napi_value v;
  napi_create_double(s->env, n, &v);
  Emit(s, kind, id, v);
  napi_close_handle_scope(s->env, scope);
}

void OnConnClosed(uv_handle_t* handle) {
  Conn* c = static_cast<Conn*>(handle->data);
  Server* s = c->server;
  close(c->fd);
  s->conns.erase(c->id);
  s->handles--;
  uint32_t id = c->id;
  int error = c->error;
  delete c;
  if (!s->orphaned) EmitNumber(s, kClose, id, error);
  MaybeFree(s);
}

void CloseConn(Conn* c, int error) {
  if (c->closing) return;
  c->closing = true;
  c->error = error;
  uv_poll_stop(&c->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->poll), OnConnClosed);
}

void OnConnPoll(uv_poll_t* handle, int status, int events);

void Watch(Conn* c) {
  if (c->closing) return;
  int want = 0;
  if (!c->paused && !c->eof) want |= UV_READABLE;
  if (c->pendingAt < c->pending.size()) want |= UV_WRITABLE;
  if (want == c->events) return;
  c->events = want;
  int r = want == 0 ? uv_poll_stop(&c->poll) : uv_poll_start(&c->poll, want, OnConnPoll);
  if (r != 0) CloseConn(c, -r);
}

// After the last pending byte of an ended connection: no more writes from this side, and once
// the peer has ended too, nothing more to do with the socket.
void FinishEnd(Conn* c) {
  if (!c->ending || c->closing || c->pendingAt != c->pending.size()) return;
  shutdown(c->fd, SHUT_WR);
  if (c->eof) CloseConn(c, 0);
}

// Writes what waits; true once nothing does.
bool Flush(Conn* c) {
  while (c->pendingAt < c->pending.size()) {
    ssize_t n = send(c->fd, c->pending.data() + c->pendingAt, c->pending.size() - c->pendingAt, MSG_NOSIGNAL);
    if (n >= 0) {
      c->pendingAt += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    CloseConn(c, errno);
    return false;
  }
  c->pending.clear();
  c->pendingAt = 0;
  return true;
}

// A fresh slab, announced to JS before any DATA points into it.
bool NewSlab(Server* s) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(s->env, &scope) != napi_ok) return false;
  napi_value buffer;
  void* data;
  bool ok = napi_create_buffer(s->env, kSlabBytes, &data, &buffer) == napi_ok;
  if (ok) {
    if (s->slab != nullptr) napi_delete_reference(s->env, s->slab);
    napi_create_reference(s->env, buffer, 1, &s->slab);
    s->slabData = static_cast<char*>(data);
    s->slabUsed = 0;
    Emit(s, kSlab, 0, buffer);
  }
  napi_close_handle_scope(s->env, scope);
  return ok;
}

void ReadSome(Conn* c) {
  Server* s = c->server;
  for (int i = 0; i < kReadsPerEvent && !c->closing && !c->paused && !c->eof; i++) {
    if (kSlabBytes - s->slabUsed < kMinRead && !NewSlab(s)) return;
    size_t room = kSlabBytes - s->slabUsed;
    ssize_t n = read(c->fd, s->slabData + s->slabUsed, room);
    if (n > 0) {
      size_t at = s->slabUsed;
      s->slabUsed += static_cast<size_t>(n);
      napi_handle_scope scope;
      if (napi_open_handle_scope(s->env, &scope) != napi_ok) return;
      napi_value offset;
      napi_create_double(s->env, static_cast<double>(at), &offset);
      Emit(s, kData, c->id, offset, static_cast<double>(n));
      napi_close_handle_scope(s->env, scope);
      if (static_cast<size_t>(n) < room) return;
      continue;
    }
    if (n == 0) {
      c->eof = true;
      Watch(c);
      Emit(s, kEnd, c->id, nullptr);
      FinishEnd(c);
      return;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) CloseConn(c, errno);
    return;
  }
}

void OnConnPoll(uv_poll_t* handle, int status, int events) {
  Conn* c = static_cast<Conn*>(handle->data);
  if (c->closing) return;
  if (status < 0) {
    // libuv reports EPOLLERR (a reset, say) as UV_EBADF; the socket knows what really happened.
    int error = -status;
    socklen_t size = sizeof error;
    if (status == UV_EBADF && (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0 || error == 0)) error = -status;
    CloseConn(c, error);
    return;
  }
  if ((events & UV_WRITABLE) != 0 && Flush(c)) {
    FinishEnd(c);
    Watch(c);
    if (!c->closing) Emit(c->server, kDrain, c->id, nullptr);
  }
  if ((events & UV_READABLE) != 0) ReadSome(c);
}

bool SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0;
}

void OnListenPoll(uv_poll_t* handle, int status, int events);

void OnAcceptPauseEnd(uv_timer_t* timer) {
  Server* s = static_cast<Server*>(timer->data);
  if (s->listenOpen) uv_poll_start(&s->listenPoll, UV_READABLE, OnListenPoll);
}

void OnListenPoll(uv_poll_t* handle, int status, int) {
  Server* s = static_cast<Server*>(handle->data);
  if (status < 0) return;
  for (int i = 0; i < kAcceptsPerEvent; i++) {
#ifdef __linux__
    int fd = accept4(s->listenFd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int fd = accept(s->listenFd, nullptr, nullptr);
    if (fd >= 0 && !SetNonBlocking(fd)) {
      close(fd);
      continue;
    }
#endif
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: the backlog keeps the socket readable, so wait instead of spinning.
        uv_poll_stop(&s->listenPoll);
        uv_timer_start(&s->acceptPause, OnAcceptPauseEnd, 100, 0);
      }
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#ifdef SO_NOSIGPIPE
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    Conn* c = new Conn();
    c->server = s;
    c->fd = fd;
    c->id = s->nextId++;
    if (s->nextId == 0) s->nextId = 1;
    c->poll.data = c;
    if (uv_poll_init_socket(s->loop, &c->poll, fd) != 0) {
      close(fd);
      delete c;
      continue;
    }
    s->conns.emplace(c->id, c);
    s->handles++;
    Emit(s, kConnection, c->id, nullptr);
    Watch(c);
  }
}

void OnListenClosed(uv_handle_t* handle) {
  Server* s = static_cast<Server*>(handle->data);
  close(s->listenFd);
  s->listenFd = -1;
  s->handles--;
  MaybeFree(s);
}

void OnTimerClosed(uv_handle_t* handle) {
  Server* s = static_cast<Server*>(handle->data);
  s->handles--;
  MaybeFree(s);
}

void StopListening(Server* s) {
  if (!s->listenOpen) return;
  s->listenOpen = false;
  uv_poll_stop(&s->listenPoll);
  uv_close(reinterpret_cast<uv_handle_t*>(&s->listenPoll), OnListenClosed);
  uv_timer_stop(&s->acceptPause);
  uv_close(reinterpret_cast<uv_handle_t*>(&s->acceptPause), OnTimerClosed);
}

// Runs after each handle's close callback: with none left, the JS object may be collected, and
// an orphaned Server (its JS object already gone) is freed.
void MaybeFree(Server* s) {
  if (s->handles > 0) return;
  if (s->self != nullptr) {
    napi_delete_reference(s->env, s->self);
    s->self = nullptr;
  }
  if (s->orphaned) delete s;
}

class TcpServer : public Napi::ObjectWrap<TcpServer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "TcpServer",
                       {InstanceMethod<&TcpServer::Listen>("listen"), InstanceMethod<&TcpServer::Write>("write"),
                        InstanceMethod<&TcpServer::Pause>("pause"), InstanceMethod<&TcpServer::Resume>("resume"),
                        InstanceMethod<&TcpServer::End>("end"), InstanceMethod<&TcpServer::Destroy>("destroy"),
                        InstanceMethod<&TcpServer::Close>("close"), InstanceMethod<&TcpServer::Pending>("pending")});
  }

  explicit TcpServer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TcpServer>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsFunction()) {
      ToJsError(env, InvalidArgument("new TcpServer(onEvent): onEvent must be a function")).ThrowAsJavaScriptException();
      return;
    }
    s_ = new Server();
    s_->env = env;
    napi_get_uv_event_loop(env, &s_->loop);
    napi_create_reference(env, info[0], 1, &s_->onEvent);
    napi_value name;
    napi_create_string_utf8(env, "caphost.TcpServer", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, info.This(), name, &s_->context);
    napi_add_env_cleanup_hook(env, OnEnvCleanup, this);
  }

  ~TcpServer() override {
    if (s_ == nullptr) return;
    napi_remove_env_cleanup_hook(s_->env, OnEnvCleanup, this);
    Orphan();
  }

 private:
  Server* s_ = nullptr;

  // The environment ends (process exit, a worker thread's end): close every handle without
  // calling into JS; the Server is freed by the last close callback if the loop runs again.
  static void OnEnvCleanup(void* arg) {
    TcpServer* self = static_cast<TcpServer*>(arg);
    if (self->s_ != nullptr) self->Orphan();
  }

  // The JS object is being collected (only possible once every handle is closed), or the env ends.
  void Orphan() {
    Server* s = s_;
    s_ = nullptr;
    s->orphaned = true;
    if (s->onEvent != nullptr) napi_delete_reference(s->env, s->onEvent);
    s->onEvent = nullptr;
    if (s->context != nullptr) napi_async_destroy(s->env, s->context);
    s->context = nullptr;
    if (s->slab != nullptr) napi_delete_reference(s->env, s->slab);
    s->slab = nullptr;
    // Close callbacks may run after the env is gone: nothing they do may touch it.
    if (s->self != nullptr) napi_delete_reference(s->env, s->self);
    s->self = nullptr;
    StopListening(s);
    for (auto& [id, c] : s->conns) CloseConn(c, 0);
    MaybeFree(s);
  }

  Server* Live(const Napi::CallbackInfo& info) {
    if (s_ == nullptr) throw CodedError("NATIVE_ERROR", "this TcpServer's environment is shutting down");
    (void)info;
    return s_;
  }

  Conn* Find(const Napi::CallbackInfo& info) {
    Server* s = Live(info);
    auto id = static_cast<uint32_t>(ArgInteger(info, 0, "id", 0, 0xffffffff));
    auto it = s->conns.find(id);
    return it == s->conns.end() || it->second->closing ? nullptr : it->second;
  }

  // The JS object must outlive every open handle: one strong reference while any is open
  // (connections only come from a listening socket, so listen() takes it).
  void Hold(Server* s) {
    if (s->self == nullptr) napi_create_reference(s->env, Value(), 1, &s->self);
  }

  // listen(address, port, backlog): a numeric IPv4 or IPv6 address; returns the bound port.
  Napi::Value Listen(const Napi::CallbackInfo& info) {
    return Guard(info, [&]() -> Napi::Value {
      Server* s = Live(info);
      if (s->listenFd >= 0) throw InvalidArgument("this TcpServer is already listening");
      if (info.Length() < 1 || !info[0].IsString()) throw InvalidArgument("listen(address, port, backlog): address must be a string");
      std::string address = info[0].As<Napi::String>().Utf8Value();
      auto port = static_cast<uint16_t>(ArgInteger(info, 1, "port", 0, 65535));
      int backlog = static_cast<int>(ArgInteger(info, 2, "backlog", 1, 65535));
      sockaddr_storage addr{};
      socklen_t len;
      auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
      auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
      if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        len = sizeof *v4;
      } else if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        len = sizeof *v6;
      } else {
        throw InvalidArgument("listen: \"" + address + "\" is not a numeric IPv4 or IPv6 address");
      }
      int fd = socket(addr.ss_family, SOCK_STREAM, 0);
      if (fd < 0) throw SysError("socket", "cannot open a listening socket");
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (!SetNonBlocking(fd)) {
        int e = errno;
        close(fd);
        throw SysError("fcntl", "cannot make the listening socket non-blocking", e);
      }
      if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
        int e = errno;
        close(fd);
        throw SysError("bind", "cannot listen on " + address + ":" + std::to_string(port), e);
      }
      if (listen(fd, backlog) != 0) {
        int e = errno;
        close(fd);
        throw SysError("listen", "cannot listen on " + address + ":" + std::to_string(port), e);
      }
      socklen_t got = sizeof addr;
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &got);
      uint16_t bound = ntohs(addr.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
      s->listenPoll.data = s;
      s->acceptPause.data = s;
      if (uv_poll_init_socket(s->loop, &s->listenPoll, fd) != 0) {
        close(fd);
        throw CodedError("NATIVE_ERROR", "uv_poll_init_socket failed on the listening socket");
      }
      uv_timer_init(s->loop, &s->acceptPause);
      uv_unref(reinterpret_cast<uv_handle_t*>(&s->acceptPause));
      s->listenFd = fd;
      s->listenOpen = true;
      s->handles += 2;
      Hold(s);
      uv_poll_start(&s->listenPoll, UV_READABLE, OnListenPoll);
      return Napi::Number::New(info.Env(), bound);
    });
  }

  // Copies a string argument's bytes (latin1 or utf8) into `into`.
  static void StringBytes(napi_env env, napi_value v, bool latin1, std::string& into) {
    size_t length = 0;
    napi_status st = latin1 ? napi_get_value_string_latin1(env, v, nullptr, 0, &length) : napi_get_value_string_utf8(env, v, nullptr, 0, &length);
    if (st != napi_ok) throw InvalidArgument("write: expected a string");
    into.resize(length + 1);
    if (latin1) napi_get_value_string_latin1(env, v, into.data(), length + 1, &length);
    else napi_get_value_string_utf8(env, v, into.data(), length + 1, &length);
    into.resize(length);
  }

  // write(id, head, body?): head a latin1 string, body a utf8 string or bytes. Writes now what
  // the kernel takes and keeps the rest; returns the bytes kept (0: all written) or -1 when the
  // connection is gone or ending.
  Napi::Value Write(const Napi::CallbackInfo& info) {
    return Guard(info, [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      Conn* c = Find(info);
      if (c == nullptr || c->ending) return Napi::Number::New(env, -1);
      Server* s = c->server;
      if (info.Length() < 2 || !info[1].IsString()) throw InvalidArgument("write(id, head, body): head must be a string");
      StringBytes(env, info[1], true, s->scratchHead);
      iovec iov[2];
      int count = 1;
      iov[0] = {s->scratchHead.data(), s->scratchHead.size()};
      if (info.Length() > 2 && !info[2].IsUndefined()) {
        if (info[2].IsString()) {
          StringBytes(env, info[2], false, s->scratchBody);
          iov[1] = {s->scratchBody.data(), s->scratchBody.size()};
        } else {
          Bytes b = ArgBytes(info, 2, "body");
          iov[1] = {b.data, b.length};
        }
        count = 2;
      }
      size_t total = iov[0].iov_len + (count == 2 ? iov[1].iov_len : 0);
      size_t done = 0;
      if (c->pendingAt == c->pending.size()) {
        msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = count;
        for (;;) {
          ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
          if (n >= 0) {
            done = static_cast<size_t>(n);
            break;
          }
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          CloseConn(c, errno);
          return Napi::Number::New(env, -1);
        }
      }
      if (done == total) return Napi::Number::New(env, 0);
      // The kernel's buffer is full: keep the rest in order and write it when the socket drains.
      for (int i = 0; i < count; i++) {
        size_t skip = done < iov[i].iov_len ? done : iov[i].iov_len;
        done -= skip;
        c->pending.append(static_cast<const char*>(iov[i].iov_base) + skip, iov[i].iov_len - skip);
      }
      Watch(c);
      return Napi::Number::New(env, static_cast<double>(c->pending.size() - c->pendingAt));
    });
  }

  Napi::Value Pending(const Napi::CallbackInfo& info) {
    return Guard(info, [&]() -> Napi::Value {
      Conn* c = Find(info);
      return Napi::Number::New(info.Env(), c == nullptr ? 0 : static_cast<double>(c->pending.size() - c->pendingAt));
    });
  }

  // The body of pause, resume, end and destroy: `act` on the live connection `id`, if there is one.
  template <typename Act>
  Napi::Value OnConn(const Napi::CallbackInfo& info, Act&& act) {
    return Guard(info, [&]() -> Napi::Value {
      if (Conn* c = Find(info)) act(c);
      return info.Env().Undefined();
    });
  }

  Napi::Value Pause(const Napi::CallbackInfo& info) {
    return OnConn(info, [](Conn* c) {
      c->paused = true;
      Watch(c);
    });
  }

  Napi::Value Resume(const Napi::CallbackInfo& info) {
    return OnConn(info, [](Conn* c) {
      c->paused = false;
      Watch(c);
    });
  }

  // Half-closes once what waits is written, and closes once the peer has ended too; until then
  // reading goes on.
  Napi::Value End(const Napi::CallbackInfo& info) {
    return OnConn(info, [](Conn* c) {
      c->ending = true;
      FinishEnd(c);
    });
  }

  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    return OnConn(info, [](Conn* c) { CloseConn(c, 0); });
  }

  // Stops accepting; open connections stay until destroyed or closed by their peers.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    return Guard(info, [&]() -> Napi::Value {
      StopListening(Live(info));
      return info.Env().Undefined();
    });
  }
};

}  // namespace
}  // namespace caphost

// Close callbacks of a worker thread's sockets run after its env is gone, when Node has already
// dlclose()d the addon for that env: a second, never-closed handle keeps this code mapped.
static void PinLibrary() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&PinLibrary), &info) != 0 && info.dli_fname != nullptr)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE);
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  PinLibrary();
  exports.Set("TcpServer", caphost::TcpServer::Define(env));
  return exports;
}

NODE_API_MODULE(caphost_net, Init)
