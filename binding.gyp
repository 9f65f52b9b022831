{
  "targets": [
    {
      "target_name": "caphost_core",
      "sources": [
        "native/core/addon.cc",
        "native/core/shared_memory.cc",
        "native/core/fd_passing.cc",
        "native/core/futex.cc",
        "native/core/sandbox.cc",
        "native/core/landlock.cc",
        "native/core/thread_broadcast.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions", "-Wall", "-Wextra"],
      "cflags_cc!": ["-fno-exceptions"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "11.0"
      }
    },
    {
      "target_name": "caphost_net",
      "sources": ["native/net/tcp_server.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions", "-Wall", "-Wextra"],
      "cflags_cc!": ["-fno-exceptions"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "11.0"
      }
    },
    {
      "target_name": "caphost_cpu",
      "sources": [
        "native/cpu/addon.cc",
        "native/cpu/fma_peak.cc",
        "native/cpu/gemm.cc",
        "native/cpu/thread_pool.cc",
        "native/cpu/kernels_x86.cc",
        "native/cpu/kernels_generic.cc",
        "native/cpu/addon_ops.cc",
        "native/cpu/ops.cc",
        "native/cpu/ops_generic.cc",
        "native/cpu/ops_x86.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-Wall", "-Wextra"],
      "cflags_cc!": ["-fno-exceptions"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "11.0",
        "OTHER_CPLUSPLUSFLAGS": ["-O3"]
      }
    },
    {
      "target_name": "caphost_device",
      "sources": [
        "native/device/addon.cc",
        "native/device/backend_loader.cc",
        "native/device/handle_table.cc",
        "native/device/command_list.cc",
        "native/device/stream_pool.cc",
        "native/cpu/backend.cc",
        "native/cpu/backend_exec.cc",
        "native/cpu/attention.cc",
        "native/cpu/attention_x86.cc",
        "native/cpu/thread_pool.cc",
        "native/cpu/gemm.cc",
        "native/cpu/kernels_x86.cc",
        "native/cpu/kernels_generic.cc",
        "native/cpu/ops.cc",
        "native/cpu/ops_generic.cc",
        "native/cpu/ops_x86.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-Wall", "-Wextra"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["-ldl"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "11.0",
        "OTHER_CPLUSPLUSFLAGS": ["-O3"]
      }
    }
  ]
}
