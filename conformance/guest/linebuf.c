/* linebuf: linked into test-i386 so its stdout is line-buffered even into a file.
 *
 * Why: in the guest its output goes to a file, which stdio buffers in 4 KiB blocks. When
 * an engine kills the program midway (v86: SIGILL in test_fcvt), up to a block of lines
 * that it did print is lost, and the report would place the death too early. Line
 * buffering makes the last line in the file the last one printed. It changes no test.
 */
#include <stdio.h>

__attribute__((constructor)) static void line_buffered_stdout(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
}
