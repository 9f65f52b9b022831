// Landlock has no TSYNC (unlike seccomp), so each thread must call restrict_self on
// its own. We borrow a free real-time signal, signal each thread with tgkill and let
// its handler restrict it; the handler records (tid, errno) in a lock-free table that
// the caller polls. Rounds repeat until /proc/self/task shows no thread we have not
// handled, so threads spawned meanwhile by a not-yet-restricted thread are caught too.
// Threads that block the signal (Node's SIGUSR1 inspector watchdog blocks everything)
// are not signalled at all (a pending signal could fire after we are gone) and are
// reported instead.
#if defined(__linux__)
#include "thread_broadcast.h"

#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>

#include "edge.h"

#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif

namespace caphost {
namespace {

constexpr int kMaxAcks = 4096;
struct Ack {
  std::atomic<int> tid{0};
  std::atomic<int> err{0};
};
Ack g_acks[kMaxAcks];
std::atomic<int> g_ack_count{0};
std::atomic<int> g_ruleset_fd{-1};  // -1 outside a broadcast: stray signals do nothing
int g_signal = 0;
std::mutex g_mutex;  // one broadcast at a time (main thread and worker_threads may race)

void OnSignal(int) {
  int saved = errno;
  int fd = g_ruleset_fd.load();
  if (fd >= 0) {
    int err = 0;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_landlock_restrict_self, fd, 0) != 0)
      err = errno;
    int i = g_ack_count.fetch_add(1);
    if (i < kMaxAcks) {
      g_acks[i].err.store(err);
      g_acks[i].tid.store(static_cast<int>(syscall(SYS_gettid)));
    }
  }
  errno = saved;
}

// The handler stays installed for good: restoring SIG_DFL would turn any late delivery
// into process termination, the default action of real-time signals.
int ClaimSignal() {
  if (g_signal != 0) return g_signal;
  for (int sig = SIGRTMAX; sig >= SIGRTMIN; --sig) {
    struct sigaction old;
    if (sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) continue;
    struct sigaction sa = {};
    sa.sa_handler = OnSignal;
    sa.sa_flags = SA_RESTART;  // interrupted syscalls in V8/libuv threads resume
    sigfillset(&sa.sa_mask);
    if (sigaction(sig, &sa, nullptr) == 0) return g_signal = sig;
  }
  throw CodedError("NATIVE_ERROR", "no free real-time signal to reach other threads");
}

std::set<int> ListThreads() {
  std::set<int> tids;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) throw SysError("opendir", "cannot list threads in /proc/self/task");
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') tids.insert(std::atoi(e->d_name));
  }
  closedir(dir);
  return tids;
}

std::string ThreadFile(int tid, const char* file) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/" + file);
  std::string all, line;
  while (std::getline(in, line)) all += line + "\n";
  return all;
}

bool BlocksSignal(int tid, int sig) {
  std::string status = ThreadFile(tid, "status");
  size_t at = status.find("SigBlk:");
  if (at == std::string::npos) return false;
  unsigned long long mask = std::strtoull(status.c_str() + at + 7, nullptr, 16);
  return (mask >> (sig - 1)) & 1ULL;
}

bool Alive(int tid) {
  return access(("/proc/self/task/" + std::to_string(tid)).c_str(), F_OK) == 0;
}

double NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

}  // namespace

BroadcastResult RestrictOtherThreads(int ruleset_fd) {
  std::lock_guard<std::mutex> lock(g_mutex);
  int sig = ClaimSignal();
  int self = static_cast<int>(syscall(SYS_gettid));
  pid_t pid = getpid();
  for (auto& a : g_acks) a.tid.store(0);
  g_ack_count.store(0);
  g_ruleset_fd.store(ruleset_fd);
  struct Reset {
    ~Reset() { g_ruleset_fd.store(-1); }
  } reset;

  BroadcastResult result;
  std::set<int> handled{self};
  for (int round = 0; round < 64; ++round) {
    std::set<int> pending;
    for (int tid : ListThreads()) {
      if (handled.count(tid)) continue;
      handled.insert(tid);
      if (BlocksSignal(tid, sig)) {
        std::string name = ThreadFile(tid, "comm");
        if (!name.empty() && name.back() == '\n') name.pop_back();
        result.unreachable.push_back({tid, name});
      } else if (syscall(SYS_tgkill, pid, tid, sig) == 0) {
        pending.insert(tid);
      } else if (errno != ESRCH) {  // ESRCH: it exited, nothing left to restrict
        throw SysError("tgkill", "cannot signal thread " + std::to_string(tid));
      }
    }
    if (pending.empty()) return result;
    double deadline = NowMs() + 2000;
    size_t seen = 0;
    while (!pending.empty()) {
      size_t n = std::min(g_ack_count.load(), kMaxAcks);
      for (; seen < n; ++seen) {
        int tid = g_acks[seen].tid.load();
        if (tid == 0) break;  // claimed but not yet written; look again next poll
        if (pending.erase(tid) == 0) continue;
        if (int err = g_acks[seen].err.load())
          throw SysError("landlock_restrict_self", "thread " + std::to_string(tid) +
                                                       " could not restrict itself", err);
        ++result.restricted;
      }
      for (auto it = pending.begin(); it != pending.end();)
        it = Alive(*it) ? std::next(it) : pending.erase(it);
      if (pending.empty()) break;
      if (NowMs() > deadline)
        throw CodedError("NATIVE_ERROR", "thread " + std::to_string(*pending.begin()) +
                                             " did not apply the Landlock ruleset within 2s");
      timespec pause{0, 200000};
      nanosleep(&pause, nullptr);
    }
  }
  throw CodedError("NATIVE_ERROR", "threads kept appearing while applying Landlock");
}

}  // namespace caphost
#endif  // __linux__
