/* sigstep.h: give an i386 Linux process an exact register state, and read it back.
 *
 * Why: the stepper (stepper.c, next to this file) enters an instruction so: a signal
 * handler rewrites its saved context (every general register, ESP, EIP and EFLAGS) and
 * the kernel's sigreturn loads it; it reads the result from the context of the signal
 * that ends the instruction. Kept apart so that the register order and the ESP/UESP
 * detail read on their own, and other guest programs may load a state the same way.
 *
 * Register arrays are in the vectors' order: eax ecx edx ebx esp ebp esi edi eip eflags.
 * Handlers run on an alternate stack (SA_ONSTACK), since ESP belongs to the case, and may
 * be re-entered (SA_NODEFER): a REP string under TF traps once per iteration.
 */
#ifndef X86LAB_SIGSTEP_H
#define X86LAB_SIGSTEP_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#define SIGSTEP_TF 0x100u
#define SIGSTEP_NREGS 10

static const int sigstep_slot[SIGSTEP_NREGS] = {REG_EAX, REG_ECX, REG_EDX, REG_EBX, REG_ESP,
                                                REG_EBP, REG_ESI, REG_EDI, REG_EIP, REG_EFL};

/* Put ``regs`` into a saved context, with ``extra_flags`` (TF, say) ORed into EFLAGS. The
 * kernel restores ESP from REG_ESP; REG_UESP (esp_at_signal) is set too, for readers. */
static inline void sigstep_load(greg_t *g, const uint32_t regs[SIGSTEP_NREGS],
                                uint32_t extra_flags) {
    for (int i = 0; i < SIGSTEP_NREGS; i++) g[sigstep_slot[i]] = (greg_t)regs[i];
    g[REG_UESP] = (greg_t)regs[4];
    g[REG_EFL] = (greg_t)(regs[9] | extra_flags);
}

/* The registers of the context a signal interrupted, in the vectors' order. */
static inline void sigstep_save(const greg_t *g, uint32_t regs[SIGSTEP_NREGS]) {
    for (int i = 0; i < SIGSTEP_NREGS; i++) regs[i] = (uint32_t)g[sigstep_slot[i]];
}

static inline void sigstep_install(int sig, void (*handler)(int, siginfo_t *, void *)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) != 0) {
        perror("sigaction");
        exit(2);
    }
}

#endif
