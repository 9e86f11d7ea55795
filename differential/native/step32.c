/* step32: run ONE instruction natively in an i386 Linux process and report the state.
 *
 * Why: a real CPU is the tie-breaker when Unicorn and the reference disagree. The state
 * is loaded through sigreturn (a handler rewrites its saved context: every general
 * register, ESP, EIP and EFLAGS with TF set), so the kernel enters the instruction with
 * exactly the case's registers; the trap flag stops it after one instruction (SIGTRAP,
 * trap number 1), or the instruction faults (the signal's trap number is the vector).
 * Handlers run on an alternate stack, since ESP belongs to the case. The context
 * rewriting is shared with conformance/guest/stepper.c (sigstep.h).
 *
 * stdin:  u32 page count, then per page u32 linear base + 4096 bytes,
 *         then u32 eax ecx edx ebx esp ebp esi edi eip eflags, then u32 rep (1 for a
 *         REP string instruction: TF interrupts it after each iteration, so the run goes
 *         on while EIP stays at the instruction).
 * stdout: u32 status (0 ran, 1 cannot map a page), u32 trapno, u32 err,
 *         u32 eax ecx edx ebx esp ebp esi edi eip eflags, then each page's 4096 bytes.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "sigstep.h"

#define PAGE 4096
#define MAX_PAGES 64

static uint32_t bases[MAX_PAGES];
static uint32_t count;
static uint32_t in_regs[10];
static uint32_t rep;
static uint32_t out[13];
static sigjmp_buf back;

static void read_all(void *dst, size_t n) {
    if (fread(dst, 1, n, stdin) != n) { fprintf(stderr, "step32: short input\n"); exit(2); }
}

static void load_state(int sig, siginfo_t *info, void *raw) {
    /* the first signal: replace the interrupted context with the case's registers */
    (void)sig; (void)info;
    sigstep_load(((ucontext_t *)raw)->uc_mcontext.gregs, in_regs, SIGSTEP_TF);
}

static void record(int sig, siginfo_t *info, void *raw) {
    /* the instruction ended (single-step trap or a fault): keep its state, go back */
    ucontext_t *uc = raw;
    (void)sig; (void)info;
    if (rep && uc->uc_mcontext.gregs[REG_TRAPNO] == 1 && uc->uc_mcontext.gregs[REG_EIP] ==
        (greg_t)in_regs[8])
        return; /* another iteration of the same REP instruction: TF is still set */
    out[0] = 0;
    out[1] = uc->uc_mcontext.gregs[REG_TRAPNO];
    out[2] = uc->uc_mcontext.gregs[REG_ERR];
    sigstep_save(uc->uc_mcontext.gregs, out + 3);
    out[12] &= ~(SIGSTEP_TF | 0x10000u);
    siglongjmp(back, 1);
}

int main(void) {
    static uint8_t alt[1 << 16];
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0};
    read_all(&count, 4);
    if (count > MAX_PAGES) { fprintf(stderr, "step32: too many pages\n"); return 2; }
    for (uint32_t i = 0; i < count; i++) {
        static uint8_t data[PAGE];
        read_all(&bases[i], 4);
        read_all(data, PAGE);
        void *at = mmap((void *)(uintptr_t)bases[i], PAGE, PROT_READ | PROT_WRITE | PROT_EXEC,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (at != (void *)(uintptr_t)bases[i]) {
            uint32_t status = 1;
            fwrite(&status, 4, 1, stdout);
            return 0;
        }
        memcpy(at, data, PAGE);
    }
    read_all(in_regs, sizeof in_regs);
    read_all(&rep, 4);
    sigaltstack(&ss, NULL);
    sigstep_install(SIGUSR1, load_state);
    sigstep_install(SIGTRAP, record);
    sigstep_install(SIGSEGV, record);
    sigstep_install(SIGBUS, record);
    sigstep_install(SIGILL, record);
    sigstep_install(SIGFPE, record);
    if (sigsetjmp(back, 1) == 0) {
        raise(SIGUSR1);
        fprintf(stderr, "step32: state was not loaded\n");
        return 2;
    }
    fwrite(out, 4, 13, stdout);
    for (uint32_t i = 0; i < count; i++) fwrite((void *)(uintptr_t)bases[i], 1, PAGE, stdout);
    return 0;
}
