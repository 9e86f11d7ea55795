/* stepper: run single-instruction test vectors in an i386 Linux user process.
 *
 * The one native stepper: the conformance suite runs it natively and inside v86, QEMU and
 * Bochs guests, and the native oracle (``x86lab vectors generate --oracle native``) runs
 * it on this machine's CPU; differential/runners/native_runner.py is its one driver.
 *
 * Why a process: v86 and QEMU have no single-step API, and the machine's own CPU has none
 * either, but every one of them runs Linux. Linux lets a process set every general
 * register, EIP and the arithmetic flags through sigreturn, and reports the state after one
 * instruction through a signal: with EFLAGS.TF set the CPU raises #DB after the
 * instruction (SIGTRAP, trapno 1); a fault before that raises its own signal. The signal
 * context carries the hardware vector (trapno) and error code, so we report vectors, not
 * signal numbers. Linux's mapping, for the record (vector -> signal at CPL3):
 *   #DE 0 -> SIGFPE   #DB 1 -> SIGTRAP  #BP 3 -> SIGTRAP  #OF 4 -> SIGSEGV  #BR 5 -> SIGSEGV
 *   #UD 6 -> SIGILL   #GP 13 -> SIGSEGV (also INT n with a DPL0 gate: error n*8+2)
 *   #PF 14 -> SIGSEGV #AC 17 -> SIGBUS  #MF 16 / #XM 19 -> SIGFPE
 * Traps (#DB single-step, #BP, #OF, INT n) leave EIP after the instruction; faults leave it
 * at the instruction. The driver (native_runner.py) turns these into outcomes.
 *
 * Engines that ignore TF (v86 clears it whenever EFLAGS is loaded): at start the program
 * checks that TF stops a NOP. If it does not, each vector runs without TF and stops at a
 * sentinel INT3 (#BP: SIGTRAP, trapno 3) that the host placed where the instruction should
 * leave EIP; the byte is put back before memory is compared. The host places a sentinel
 * only where this machine's CPU shows that it changes nothing (conformance/sentinels.py).
 * X86LAB_STEPPER_STOP=sentinel forces that mode (for that check).
 *
 * Input (binary, little-endian), records back to back:
 *   u32 flags (bit 0: REP string: keep stepping while EIP stays on the instruction;
 *              bit 1: a sentinel may go at the address that follows;
 *              bit 2: the vector expects an exception, which stops it without a sentinel)
 *   u32 sentinel address
 *   u32 regs[10]: eax ecx edx ebx esp ebp esi edi eip eflags
 *   u32 npages, then per page: u32 base, u32 fill, u32 npairs, npairs x u32 (offset<<8|byte)
 * Output: one line per record, written with one write() so a crash loses no earlier line:
 *   "<index> S|T|X <trapno> <err> <10 regs in hex> [<addr>:<hex bytes> ...]"
 *      S: stopped by the single-step trap, T: by the sentinel, X: an exception
 *   "<index> N <reason>"   the vector cannot be expressed here (page collides, unmappable)
 * Usage: stepper VECTORS.bin [FIRST_INDEX [SKIP,LIST [DIED:SIGNAL]]]
 *   The host restarts it after FIRST_INDEX when it died; the indices in SKIP,LIST are not
 *   run but reported "C killed-the-engine" (they took the whole emulator down before);
 *   DIED:SIGNAL ("-": none) is the record the previous stepper died on, reported first as
 *   "<DIED> C signal-<SIGNAL>".
 * On a console (stderr is a terminal: inside an emulated guest) each output line is also
 * written to stderr, framed as "<line> ~<crc32 of line, 8 hex digits>", and before each
 * vector "@<index>" goes there too: when an emulator dies, its console log holds every
 * result that got out and names the vector that killed it. Only this process writes those
 * lines, and the frame lets the host drop any line that reached it damaged: the kernel's
 * own messages, or a second writer's chunks, can land in the middle of a line on a serial
 * console, and a tail like "3 S ..." of "1723 S ..." must never pass for vector 3's result.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <ucontext.h>
#include <unistd.h>

#include "sigstep.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define PAGE 4096u
#define MAX_PAGES 16
#define HOME_EFLAGS 0x202u
#define MAX_REP_STEPS (1u << 22)
#define FLAG_REP 1u
#define FLAG_SENTINEL 2u
#define FLAG_EXPECTS_EXCEPTION 4u
#define INT3 0xCCu
#define SINGLE_STEP 1u
#define BREAKPOINT 3u

static uint32_t target[10];   /* the registers to start the instruction with */
static uint32_t result[10];   /* the registers the signal reported */
static uint32_t result_trapno, result_err, rep_string, rep_steps;
static uint32_t launch_flags = SIGSTEP_TF;  /* 0 in sentinel mode: TF does not stop here */
static uint8_t sentinel_was; /* the byte this vector's sentinel INT3 replaced */
static uint16_t home_gs, home_fs;  /* glibc's TLS selector: restored first in a handler */
static sigjmp_buf back_home;
static volatile sig_atomic_t runaway;  /* SIGALRM came first: the instruction never stopped */
#define RUNAWAY_SECONDS 2
static uint8_t before[MAX_PAGES][PAGE];
static uint32_t bases[MAX_PAGES];

/* SIGUSR1: load the vector's state into the interrupted context; returning "resumes" at
 * the instruction (with TF set unless in sentinel mode). Data segments become the flat
 * user data selector, since the vectors assume base 0 and glibc's GS has the TLS base. */
static void launch(int sig, siginfo_t *info, void *ctx) {
    ucontext_t *uc = ctx;
    greg_t *g = uc->uc_mcontext.gregs;
    (void)sig, (void)info;
    sigstep_load(g, target, launch_flags);
    g[REG_ES] = g[REG_DS];
    g[REG_FS] = g[REG_DS];
    g[REG_GS] = g[REG_DS];
    g[REG_SS] = g[REG_DS];
}

/* Any signal after the launch: the instruction finished (#DB, or #BP at the sentinel) or
 * raised an exception. */
static void land(int sig, siginfo_t *info, void *ctx) {
    ucontext_t *uc = ctx;
    greg_t *g = uc->uc_mcontext.gregs;
    /* No TLS access (stack protector, errno, siglongjmp's pointer guard) before this. */
    __asm__ volatile("movw %0, %%gs\n\tmovw %1, %%fs" : : "r"(home_gs), "r"(home_fs));
    (void)sig, (void)info;
    if (g[REG_TRAPNO] == SINGLE_STEP && rep_string && (uint32_t)g[REG_EIP] == target[8] &&
        ++rep_steps < MAX_REP_STEPS) {
        return;  /* a REP string instruction traps after every iteration: keep going */
    }
    sigstep_save(g, result);
    result_trapno = (uint32_t)g[REG_TRAPNO];
    result_err = (uint32_t)g[REG_ERR];
    siglongjmp(back_home, 1);
}

/* SIGALRM: the instruction (or whatever ran after it) went on for RUNAWAY_SECONDS without
 * stopping. An engine that does not deliver the single-step trap would otherwise run the
 * fill bytes forever and hang the whole suite. */
static void give_up(int sig, siginfo_t *info, void *ctx) {
    runaway = 1;
    rep_string = 0;  /* land() must not take this for a REP iteration */
    land(sig, info, ctx);
}

/* Does TF stop this engine after one instruction? Launch at a NOP with TF set; the CPU
 * traps with EIP one byte on. (v86 drops TF: the NOPs run on into the UD2.) */
extern char stepper_probe[];
__asm__(".text\nstepper_probe: nop; nop; nop; nop; ud2\n");

static int single_step_works(void) {
    memset(target, 0, sizeof target);
    __asm__ volatile("movl %%esp, %0" : "=r"(target[4]));
    target[4] -= 256;  /* below our frame: the probe pushes nothing, but keep clear */
    target[8] = (uint32_t)(uintptr_t)stepper_probe;
    target[9] = HOME_EFLAGS;
    rep_string = 0;
    if (sigsetjmp(back_home, 1) == 0) {
        raise(SIGUSR1);
        return 0;  /* the launch returned: nothing stopped anything */
    }
    __asm__ volatile("pushl %0\n\tpopfl" : : "i"(HOME_EFLAGS) : "cc", "memory");
    return result_trapno == SINGLE_STEP && result[8] == target[8] + 1;
}

static int read_u32(FILE *in, uint32_t *value) {
    return fread(value, 4, 1, in) == 1;
}

static void fail_input(long index) {
    fprintf(stderr, "stepper: record %ld is truncated or malformed\n", index);
    exit(2);
}

static int on_console;  /* stderr is a terminal: echo framed lines there */

static void write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n <= 0) exit(3);
        data += n, len -= (size_t)n;
    }
}

/* CRC-32 (the reflected polynomial 0xEDB88320 of zlib and Ethernet), bit by bit: the
 * lines are short and a table would be one more thing to get wrong. */
static uint32_t crc32_of(const char *data, size_t len) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint8_t)data[i];
        for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1u));
    }
    return ~crc;
}

/* One output line (ending in a newline): to stdout, and framed to the console. */
static void emit(const char *line, size_t len) {
    static char framed[40100];
    write_all(1, line, len);
    if (!on_console) return;
    size_t body = len - 1;  /* without the newline */
    memcpy(framed, line, body);
    int n = snprintf(framed + body, sizeof framed - body, " ~%08x\n", crc32_of(line, body));
    write_all(2, framed, body + (size_t)n);
}

static void unmap_all(uint32_t count) {
    for (uint32_t i = 0; i < count; i++) munmap((void *)(uintptr_t)bases[i], PAGE);
}

/* Map and fill the record's pages; returns a reason string if they cannot be mapped. */
static const char *map_pages(FILE *in, long index, uint32_t npages, int skip) {
    const char *reason = NULL;
    for (uint32_t p = 0; p < npages; p++) {
        uint32_t base, fill, npairs, pair;
        if (!read_u32(in, &base) || !read_u32(in, &fill) || !read_u32(in, &npairs))
            fail_input(index);
        bases[p] = base;
        memset(before[p], (int)fill, PAGE);
        for (uint32_t k = 0; k < npairs; k++) {
            if (!read_u32(in, &pair)) fail_input(index);
            before[p][(pair >> 8) % PAGE] = (uint8_t)pair;
        }
        if (skip || reason) continue;
        void *want = (void *)(uintptr_t)base;
        void *got = mmap(want, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (got == MAP_FAILED || got != want) {
            /* EEXIST: the stepper's own memory is there (an old kernel ignoring the flag
             * maps elsewhere: the same case); otherwise the kernel refuses the address (the
             * kernel half above 3 GiB on i386, below mmap_min_addr, ...). */
            int why = got == MAP_FAILED ? errno : EEXIST;
            if (got != MAP_FAILED) munmap(got, PAGE);
            unmap_all(p);
            reason = why == EEXIST ? "page-collides-with-the-stepper" : "page-not-mappable-here";
            continue;
        }
        memcpy(want, before[p], PAGE);
    }
    return reason;
}

/* Append "addr:hexbytes" for each run of changed bytes. */
static size_t append_changes(char *out, size_t used, size_t cap, uint32_t npages) {
    for (uint32_t p = 0; p < npages; p++) {
        const uint8_t *now = (const uint8_t *)(uintptr_t)bases[p];
        for (uint32_t i = 0; i < PAGE && used + 64 < cap; i++) {
            if (now[i] == before[p][i]) continue;
            used += (size_t)snprintf(out + used, cap - used, " %x:", bases[p] + i);
            for (; i < PAGE && now[i] != before[p][i] && used + 8 < cap; i++)
                used += (size_t)snprintf(out + used, cap - used, "%02x", now[i]);
        }
    }
    return used;
}

static int skipped(const char *list, long index) {
    char *end;
    while (list && *list) {
        long value = strtol(list, &end, 10);
        if (end == list) return 0;
        if (value == index) return 1;
        list = *end == ',' ? end + 1 : end;
    }
    return 0;
}

/* Run the loaded vector; ``stop`` is its sentinel's address (NULL: none). */
static void run_one(long index, uint32_t npages, uint8_t *stop) {
    static char line[40000];
    size_t used;
    rep_steps = 0;
    runaway = 0;
    if (stop) sentinel_was = *stop, *stop = INT3;
    if (sigsetjmp(back_home, 1) == 0) {
        alarm(RUNAWAY_SECONDS);
        raise(SIGUSR1);
        fprintf(stderr, "stepper: record %ld: the launch returned\n", index);
        exit(2);
    }
    /* Back from the handler, with whatever EFLAGS the instruction left (a POPF may have set
     * AC, NT or ID): start clean, or sigreturn would carry NT and ID into the next vector. */
    __asm__ volatile("pushl %0\n\tpopfl" : : "i"(HOME_EFLAGS) : "cc", "memory");
    alarm(0);
    int at_sentinel = stop && result_trapno == BREAKPOINT &&
                      result[8] == (uint32_t)(uintptr_t)stop + 1;
    if (stop && *stop == INT3) *stop = sentinel_was;
    if (runaway) {
        used = (size_t)snprintf(line, sizeof line, "%ld C runaway: did not stop within %d s\n",
                                index, RUNAWAY_SECONDS);
        emit(line, used);
        return;
    }
    if (at_sentinel) result[8]--;  /* EIP is where the instruction left it */
    used = (size_t)snprintf(line, sizeof line, "%ld %c %u %u", index,
                            at_sentinel ? 'T' : result_trapno == SINGLE_STEP ? 'S' : 'X',
                            result_trapno, result_err);
    for (int i = 0; i < 10; i++)
        used += (size_t)snprintf(line + used, sizeof line - used, " %x", result[i]);
    used = append_changes(line, used, sizeof line, npages);
    line[used++] = '\n';
    emit(line, used);
}

/* Read one record's header (flags, sentinel address, registers, page count). */
static int read_record(FILE *in, long index, uint32_t *flags, uint32_t *stop,
                       uint32_t *npages) {
    if (!read_u32(in, flags)) return 0;
    if (!read_u32(in, stop)) fail_input(index);
    for (int i = 0; i < 10; i++)
        if (!read_u32(in, &target[i])) fail_input(index);
    if (!read_u32(in, npages) || *npages > MAX_PAGES) fail_input(index);
    return 1;
}

int main(int argc, char **argv) {
    static uint8_t altstack[1 << 16];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    const int landings[] = {SIGTRAP, SIGSEGV, SIGFPE, SIGILL, SIGBUS};
    if (argc < 2) {
        fprintf(stderr, "usage: stepper VECTORS.bin [FIRST_INDEX [SKIP,LIST]]\n");
        return 2;
    }
    long first = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
    const char *skip = argc > 3 ? argv[3] : NULL;
    const char *died = argc > 4 && strcmp(argv[4], "-") != 0 ? argv[4] : NULL;
    const char *forced = getenv("X86LAB_STEPPER_STOP");
    int drain = on_console = isatty(2);
    FILE *in = fopen(argv[1], "rb");
    if (!in) {
        perror(argv[1]);
        return 2;
    }
    __asm__ volatile("movw %%gs, %0\n\tmovw %%fs, %1" : "=r"(home_gs), "=r"(home_fs));
    if (sigaltstack(&ss, NULL) != 0) {
        perror("sigaltstack");
        return 2;
    }
    sigstep_install(SIGUSR1, launch);
    sigstep_install(SIGALRM, give_up);
    for (unsigned i = 0; i < sizeof landings / sizeof landings[0]; i++)
        sigstep_install(landings[i], land);
    int forced_sentinels = forced && strcmp(forced, "sentinel") == 0;
    int use_sentinels = forced_sentinels || !single_step_works();
    if (use_sentinels) launch_flags = 0;
    fprintf(stderr, "stepper: stopping each vector by %s\n",
            forced_sentinels ? "a sentinel INT3 (X86LAB_STEPPER_STOP=sentinel)"
            : use_sentinels ? "a sentinel INT3 (TF did not stop a NOP)" : "the single-step trap");
    if (died) {
        char line[96];
        const char *colon = strchr(died, ':');
        int n = snprintf(line, sizeof line, "%ld C signal-%s\n", strtol(died, NULL, 10),
                         colon ? colon + 1 : "?");
        emit(line, (size_t)n);
    }
    uint32_t flags, stop, npages;
    for (long index = 0; read_record(in, index, &flags, &stop, &npages); index++) {
        rep_string = flags & FLAG_REP;
        const char *reason = map_pages(in, index, npages, index < first);
        if (index < first) continue;
        if (!reason && use_sentinels && !(flags & (FLAG_SENTINEL | FLAG_EXPECTS_EXCEPTION))) {
            unmap_all(npages);
            reason = "no-single-step-trap-and-no-safe-place-for-a-sentinel";
        }
        char line[96];
        if (reason || skipped(skip, index)) {
            int n = snprintf(line, sizeof line, reason ? "%ld N %s\n" : "%ld C killed-the-engine\n",
                             index, reason);
            emit(line, (size_t)n);
            if (!reason) unmap_all(npages);
            continue;
        }
        int n = snprintf(line, sizeof line, "@%ld\n", index);
        if (write(2, line, (size_t)n) < 0) exit(3);
        if (drain) tcdrain(2);  /* on a serial console: out before the vector can kill */
        int place = use_sentinels && (flags & FLAG_SENTINEL);
        run_one(index, npages, place ? (uint8_t *)(uintptr_t)stop : NULL);
        unmap_all(npages);
    }
    return 0;
}
