/* repflags: which EFLAGS does a REPNE CMPSD show when it is interrupted between iterations?
 *
 * Why: the vectors (Unicorn and the reference) keep the flags of the last completed
 * iteration when a later iteration of a REP CMPS/SCAS faults, and QEMU agrees; this
 * machine's CPU and v86 showed the flags from before the instruction. This program shows
 * the CPU's behaviour directly, at both kinds of interruption:
 *   trap   TF set: the single-step trap after each iteration (SDM Vol. 3A 17.3.1.4)
 *   fault  the iteration after the last word of a page reads the unmapped page after it
 * Each iteration compares 0x78e7dfac+i with 0x220b62e2 (never equal, so REPNE goes on):
 * every compare leaves OF=SF=AF=ZF=CF=0. The flags start as OF|SF|AF|PF (0xa96 with the
 * fixed bit and IF). Printed per stop: the trap number, EFLAGS & 0xfff, ECX. A CPU that
 * writes each iteration's flags prints 0x202/0x206-like values after the first iteration;
 * one that keeps them until the instruction ends prints 0xa96 (0xb96 with TF) throughout.
 * Build and run: gcc -m32 -static -O1 repflags.c -o repflags && ./repflags
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define PAGE 4096u
#define WORDS_BEFORE_END 3u  /* iterations that complete before the fault */
#define START_FLAGS 0xa96u   /* OF SF IF AF PF, bit 1 */
#define TF 0x100u

static void stop(int sig, siginfo_t *info, void *ctx) {
    greg_t *g = ((ucontext_t *)ctx)->uc_mcontext.gregs;
    (void)sig, (void)info;
    printf(" %d:%#x:ecx=%u", (int)g[REG_TRAPNO], (unsigned)g[REG_EFL] & 0xfffu,
           (unsigned)g[REG_ECX]);
    if (g[REG_TRAPNO] == 1)
        return;  /* a single-step trap: let the next iteration run */
    printf("\n");
    fflush(stdout);
    _exit(0);
}

int main(int argc, char **argv) {
    int trap = argc > 1 && strcmp(argv[1], "trap") == 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = stop;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGTRAP, &sa, NULL);
    /* Two pages: the first holds the compared words, the second is unmapped again. */
    uint8_t *left = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint32_t *right = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                           -1, 0);
    if (left == MAP_FAILED || right == MAP_FAILED)
        return 1;
    munmap(left + PAGE, PAGE);
    for (uint32_t i = 0; i < PAGE / 4; i++) {
        ((uint32_t *)left)[i] = 0x78e7dfacu + i;
        right[i] = 0x220b62e2u;
    }
    uint32_t esi = (uint32_t)(uintptr_t)(left + PAGE - 4 * WORDS_BEFORE_END);
    uint32_t edi = (uint32_t)(uintptr_t)right, ecx = 100;
    uint32_t flags = START_FLAGS | (trap ? TF : 0);
    printf("%s: start %#x", trap ? "trap" : "fault", START_FLAGS);
    __asm__ volatile("pushl %3\n\tpopfl\n\trepne cmpsl\n\t"
                     "pushfl\n\tandl $0xfffffeff, (%%esp)\n\tpopfl"
                     : "+S"(esi), "+D"(edi), "+c"(ecx) : "r"(flags) : "cc", "memory");
    printf(" no fault\n");
    return 1;
}
