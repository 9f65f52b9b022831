// Makes every other thread of this process apply a Landlock ruleset to itself (Linux).
// See thread_broadcast.cc for the mechanism and its limits.
#pragma once

#include <string>
#include <vector>

namespace caphost {

struct UnreachableThread {
  int tid;
  std::string name;  // /proc comm, so a person can tell which runtime thread it is
};

struct BroadcastResult {
  int restricted = 0;                         // threads that acknowledged
  std::vector<UnreachableThread> unreachable;  // threads blocking the signal
};

// Throws CodedError (NATIVE_ERROR) when a reachable thread fails or does not answer;
// by then some threads may be restricted already, so the caller must treat it as fatal.
BroadcastResult RestrictOtherThreads(int ruleset_fd);

}  // namespace caphost
