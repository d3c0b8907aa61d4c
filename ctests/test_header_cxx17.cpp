// The same checks as test_header_c11.c, compiled as strict C++17 with
// -Wall -Wextra -pedantic -Werror (ft_utils' weave_local did not compile as C++:
// here it is thread_local).
#include "test_header_c11.c"
