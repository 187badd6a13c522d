// A shared library with no zwq entry point at all.
extern "C" __attribute__((visibility("default"))) int not_a_plugin() {
  return 42;
}
