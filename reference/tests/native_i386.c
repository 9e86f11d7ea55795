/* Runs single IA-32 instructions natively, for the reference's tests.
 *
 * stdin, one case per line:  CODE_HEX EAX ECX EDX EFLAGS DATA_HEX  (numbers in hex)
 * stdout, one line per case: EAX ECX EDX EFLAGS DATA_HEX, or "fault SIGNAL".
 * The instruction runs from an executable page followed by RET, with EBX pointing at the
 * middle of a 64-byte data buffer (DATA_HEX fills it, 128 hex digits), so [EBX+-disp8]
 * operands and bit offsets into memory stay inside it. A divide error arrives as SIGFPE
 * and is reported, not fatal. Only the arithmetic flags are loaded, so TF/AC/DF stay 0.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static sigjmp_buf recover;

static void on_fault(int sig) { siglongjmp(recover, sig); }

static void unhex(const char *text, unsigned char *out, size_t max, size_t *count) {
    size_t n = strlen(text) / 2;
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned byte;
        sscanf(text + 2 * i, "%2x", &byte);
        out[i] = (unsigned char)byte;
    }
    *count = n < max ? n : max;
}

int main(void) {
    unsigned char *code = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static unsigned char data[64];
    char code_hex[64], data_hex[160];
    unsigned eax, ecx, edx, flags;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_fault;
    sigaction(SIGFPE, &action, 0);
    sigaction(SIGSEGV, &action, 0);
    sigaction(SIGILL, &action, 0);
    while (scanf("%63s %x %x %x %x %159s", code_hex, &eax, &ecx, &edx, &flags, data_hex) == 6) {
        size_t length, filled;
        unhex(code_hex, code, 60, &length);
        code[length] = 0xC3; /* RET */
        unhex(data_hex, data, sizeof data, &filled);
        unsigned char *ebx = data + 32;
        int sig = sigsetjmp(recover, 1);
        if (sig) {
            printf("fault %d\n", sig);
            fflush(stdout);
            continue;
        }
        flags = (flags & 0x8D5) | 0x2;
        __asm__ volatile("push %[fl]\n\tpopf\n\tcall *%[fn]\n\tpushf\n\tpop %[fl]"
                         : "+a"(eax), "+c"(ecx), "+d"(edx), [fl] "+D"(flags), "+b"(ebx)
                         : [fn] "S"(code)
                         : "memory", "cc");
        printf("%08x %08x %08x %08x ", eax, ecx, edx, flags);
        for (size_t i = 0; i < sizeof data; i++) printf("%02x", data[i]);
        printf("\n");
        fflush(stdout);
    }
    return 0;
}
