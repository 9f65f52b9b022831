/*
 * caphost-backend-probe LIBRARY: loads a device backend library in this throwaway process,
 * checks its ABI and calls init(), so that a bad build or a broken driver kills the probe and
 * not the controller. Prints one line of JSON on stdout and exits with:
 *   0  {"ok":true,"name":"cuda","devices":[{"name":..,"totalMemory":..,"computeMajor":..,
 *      "computeMinor":..,"threads":..,"hostVisible":..}]}
 *   2  {"ok":false,"stage":"init","status":5,"why":"no NVIDIA driver: ..."}   (the backend
 *      cannot run here; why is the backend's own reason)
 *   1  {"ok":false,"stage":"load"|"symbol"|"abi","why":"..."}   (the library itself is bad)
 * A crash (signal) is the caller's to report.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "../include/caphost_backend.h"

static void jsonString(const char* s) {
  putchar('"');
  for (; *s; ++s) {
    const unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

static int failure(int code, const char* stage, int status, const char* why) {
  printf("{\"ok\":false,\"stage\":\"%s\"", stage);
  if (status >= 0) printf(",\"status\":%d", status);
  printf(",\"why\":");
  jsonString(why);
  printf("}\n");
  return code;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: caphost-backend-probe LIBRARY\n");
    return 64;
  }
  void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) return failure(1, "load", -1, dlerror());
  ch_backend_entry_fn entry = (ch_backend_entry_fn)dlsym(lib, CH_BACKEND_ENTRY_SYMBOL);
  if (!entry) return failure(1, "symbol", -1, "the library does not export " CH_BACKEND_ENTRY_SYMBOL);
  const ch_backend* b = entry(CH_BACKEND_ABI_VERSION);
  if (!b) return failure(1, "abi", -1, "the library refused this host's backend ABI version");
  if (b->abi_version != CH_BACKEND_ABI_VERSION || b->struct_size != sizeof(ch_backend)) {
    char why[160];
    snprintf(why, sizeof why, "the library was built for backend ABI %u (table of %u bytes), this host has %u (%u bytes)",
             b->abi_version, b->struct_size, CH_BACKEND_ABI_VERSION, (unsigned)sizeof(ch_backend));
    return failure(1, "abi", -1, why);
  }
  char why[512] = "";
  const ch_status s = b->init(why, sizeof why);
  if (s != CH_OK) {
    if (!why[0]) snprintf(why, sizeof why, "%s", b->last_error());
    return failure(2, "init", (int)s, why);
  }
  printf("{\"ok\":true,\"name\":");
  jsonString(b->name);
  printf(",\"devices\":[");
  const int n = b->device_count();
  for (int i = 0; i < n; ++i) {
    ch_device_info info;
    memset(&info, 0, sizeof info);
    if (b->device_info(i, &info) != CH_OK) continue;
    info.name[sizeof info.name - 1] = '\0';
    printf("%s{\"name\":", i ? "," : "");
    jsonString(info.name);
    printf(",\"totalMemory\":%llu,\"computeMajor\":%d,\"computeMinor\":%d,\"threads\":%d,\"hostVisible\":%u}",
           (unsigned long long)info.total_memory, info.compute_major, info.compute_minor, info.threads,
           info.host_visible);
  }
  printf("]}\n");
  b->shutdown();
  return 0;
}
