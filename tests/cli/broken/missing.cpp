// A library the broken app needs at load time and that no loader finds (it
// is built where no search path or RPATH points).
int stamen_test_missing_answer() { return 42; }
