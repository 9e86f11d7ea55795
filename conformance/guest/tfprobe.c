/* tfprobe: does this engine deliver the single-step trap (#DB) that EFLAGS.TF promises?
 *
 * Why: the stepper stops a vector's instruction with TF. An engine that ignores TF runs on
 * into the fill bytes after the instruction, so every vector fails for one reason and the
 * engine's real per-instruction differences are hidden. This program answers, in three
 * lines, how TF behaves when set the two ways the stepper and debuggers set it:
 *   popf       PUSHF; OR TF; POPF, then eight NOPs: the CPU traps after the first NOP (the
 *              instruction after POPF, SDM Vol. 3A 17.3.1.4) and after each NOP after it.
 *   sigreturn  a signal handler sets TF in the saved context and points EIP at eight NOPs:
 *              the kernel's IRET loads TF, and the CPU traps after each NOP.
 *   int3       a NOP followed by INT3, TF clear: the sentinel the stepper falls back to
 *              (SIGTRAP, trap number 3, EIP after the INT3).
 * Each line lists the traps by trap number and EIP offset from the first NOP ("1@+1" is a
 * single-step trap after the first NOP), at most four, then how the block ended: the UD2
 * after the NOPs raises SIGILL at +8 when nothing stopped it. The handler clears TF after
 * the fourth trap. The host compares the lines with this machine's CPU, not with a table.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>

#define TF 0x100
#define MAX_TRAPS 4

extern char nops_start[], popf_start[], popf_nops[], int3_start[];
/* Eight NOPs then UD2; the POPF block sets TF first; the INT3 block is one NOP, INT3. */
__asm__(".text\n"
        "nops_start: nop; nop; nop; nop; nop; nop; nop; nop; ud2\n"
        "popf_start: pushfl; orl $0x100, (%esp); popfl\n"
        "popf_nops: nop; nop; nop; nop; nop; nop; nop; nop; ud2\n"
        "int3_start: nop; int3; nop; nop; nop; nop; nop; nop; ud2\n");

static sigjmp_buf back;
static char *origin;
static char line[256];
static int traps;

static void note(const char *what, int trapno, greg_t eip) {
    size_t used = strlen(line);
    snprintf(line + used, sizeof line - used, " %s%d@+%ld", what, trapno,
             (long)(eip - (greg_t)origin));
}

static void on_trap(int sig, siginfo_t *info, void *raw) {
    ucontext_t *uc = raw;
    greg_t *g = uc->uc_mcontext.gregs;
    (void)sig, (void)info;
    note("", (int)g[REG_TRAPNO], g[REG_EIP]);
    if (++traps >= MAX_TRAPS || g[REG_TRAPNO] == 3) {
        g[REG_EFL] &= ~TF;
        if (g[REG_TRAPNO] == 3) siglongjmp(back, 1);
    }
}

static void on_end(int sig, siginfo_t *info, void *raw) {
    ucontext_t *uc = raw;
    (void)info;
    note(sig == SIGILL ? "end:SIGILL:" : "end:signal:", sig == SIGILL ? 6 : sig,
         uc->uc_mcontext.gregs[REG_EIP]);
    siglongjmp(back, 1);
}

static void launch(int sig, siginfo_t *info, void *raw) {
    ucontext_t *uc = raw;
    (void)sig, (void)info;
    uc->uc_mcontext.gregs[REG_EIP] = (greg_t)origin;
    uc->uc_mcontext.gregs[REG_EFL] |= TF;
}

static void install(int sig, void (*fn)(int, siginfo_t *, void *)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(sig, &sa, NULL);
}

/* Run one block: ``start`` is where to jump (NULL: via the SIGUSR1 launch at ``from``). */
static void probe(const char *name, char *from, void (*start)(void)) {
    snprintf(line, sizeof line, "%s:", name);
    origin = from;
    traps = 0;
    if (sigsetjmp(back, 1) == 0) {
        if (start) start();
        else raise(SIGUSR1);
    }
    printf("%s\n", line);
    fflush(stdout);
}

int main(void) {
    install(SIGTRAP, on_trap);
    install(SIGILL, on_end);
    install(SIGSEGV, on_end);
    install(SIGUSR1, launch);
    probe("popf", popf_nops, (void (*)(void))popf_start);
    probe("sigreturn", nops_start, NULL);
    probe("int3", int3_start, (void (*)(void))int3_start);
    return 0;
}
