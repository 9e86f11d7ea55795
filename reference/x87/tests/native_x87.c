/* Runs single x87 instructions natively, for the reference's x87 tests.
 *
 * stdin, one case per line:  CODE_HEX STATE_HEX EAX EFLAGS DATA_HEX
 *   STATE_HEX: a 108-byte FNSAVE image (32-bit protected-mode layout) loaded by FRSTOR;
 *   DATA_HEX: 640 bytes, EBX points at byte 64 (16-byte aligned, room for FXSAVE).
 * stdout, one line per case: EAX EFLAGS STATE_HEX DATA_HEX (state saved by FNSAVE right
 * after the instruction), or "fault SIGNAL" (#MF arrives as SIGFPE).
 * FNSAVE does not wait, so an unmasked exception the instruction raised is seen as
 * ES/B in the saved status word, as the SDM's deferred #MF says.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static sigjmp_buf recover;

static void on_fault(int sig) { siglongjmp(recover, sig); }

static void unhex(const char *text, unsigned char *out, size_t max) {
    size_t n = strlen(text) / 2;
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned byte;
        sscanf(text + 2 * i, "%2x", &byte);
        out[i] = (unsigned char)byte;
    }
}

static void hex(const unsigned char *bytes, size_t n) {
    for (size_t i = 0; i < n; i++) printf("%02x", bytes[i]);
}

int main(void) {
    unsigned char *code = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static unsigned char data[640] __attribute__((aligned(16)));
    static unsigned char state_in[108], state_out[108];
    static char code_hex[64], state_hex[232], data_hex[1290];
    unsigned eax, flags;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_fault;
    sigaction(SIGFPE, &action, 0);
    sigaction(SIGSEGV, &action, 0);
    sigaction(SIGILL, &action, 0);
    while (scanf("%63s %231s %x %x %1289s", code_hex, state_hex, &eax, &flags, data_hex) == 5) {
        memset(code, 0, 64);
        unhex(code_hex, code, 60);
        code[strlen(code_hex) / 2] = 0xC3; /* RET */
        unhex(state_hex, state_in, sizeof state_in);
        unhex(data_hex, data, sizeof data);
        unsigned char *ebx = data + 64;
        int sig = sigsetjmp(recover, 1);
        if (sig) {
            __asm__ volatile("fninit");
            printf("fault %d\n", sig);
            fflush(stdout);
            continue;
        }
        flags = (flags & 0x8D5) | 0x2;
        __asm__ volatile("fninit\n\tfrstor (%[in])\n\tpush %[fl]\n\tpopf\n\t"
                         "call *%[fn]\n\tfnsave (%[out])\n\tpushf\n\tpop %[fl]\n\tfninit"
                         : "+a"(eax), [fl] "+c"(flags), "+b"(ebx)
                         : [fn] "d"(code), [in] "S"(state_in), [out] "D"(state_out)
                         : "memory", "cc");
        printf("%08x %08x ", eax, flags);
        hex(state_out, sizeof state_out);
        printf(" ");
        hex(data, sizeof data);
        printf("\n");
        fflush(stdout);
    }
    return 0;
}
