/* One differential case on Unicorn in one call: the per-case sequence and the hooks of
 * differential/runners/unicorn_runner.py, in C.
 *
 * Why C: from Python, a case on Unicorn crossed into native code ~12 times (context
 * restore, page write, TLB flush, cache removal, register write, emu_start, register
 * read, frame read, and the code, TLB-fill and interrupt hooks called back through
 * ctypes). Each crossing cost 1-3 us, ~25 of a case's ~45 us on Unicorn (issue 18).
 * Here a case is one call, and the hooks never leave C on the common path.
 *
 * What stays in Python (unicorn_runner.py) is every decision about an outcome, and the
 * one rare path of the code hook: an instruction that comes back to its own address (a
 * REP round, a self-modifying restart, a jump to itself) is judged by the Python
 * callback ``back_at_start``, which answers STOP, GO_ON or RESTARTED.
 *
 * Unicorn's API is declared here rather than taken from unicorn.h (the PyPI wheel ships
 * the library, not its headers); every constant (hook kinds, control codes, protection)
 * comes from the Python binding through x86lab_core_new. Built by unicorn_core.py.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct uc_struct uc_engine;
typedef struct uc_context uc_context;
typedef size_t uc_hook;
typedef int uc_err;

struct uc_tlb_entry {
    uint64_t paddr;
    int perms;
};

uc_err uc_context_restore(uc_engine *uc, uc_context *context);
uc_err uc_mem_write(uc_engine *uc, uint64_t address, const void *bytes, uint64_t size);
uc_err uc_mem_read(uc_engine *uc, uint64_t address, void *bytes, uint64_t size);
uc_err uc_ctl(uc_engine *uc, int control, ...);
uc_err uc_reg_write_batch(uc_engine *uc, int const *regs, void *const *vals, int count);
uc_err uc_reg_read_batch(uc_engine *uc, int const *regs, void **vals, int count);
uc_err uc_emu_start(uc_engine *uc, uint64_t begin, uint64_t until, uint64_t timeout,
                    size_t count);
uc_err uc_emu_stop(uc_engine *uc);
uc_err uc_hook_add(uc_engine *uc, uc_hook *hh, int type, void *callback, void *user_data,
                   uint64_t begin, uint64_t end, ...);

#define PAGE_SIZE 4096u
#define PAGE_BASE 0xFFFFF000u

enum { STOP = 0, GO_ON = 1, RESTARTED = 2 };  /* back_at_start's answers (unicorn_core.py) */
enum { NO_INTERRUPT = -1, NOT_REFUSED = -1 };

typedef int (*back_at_start_t)(uint64_t address, uint64_t steps);

struct core {
    uc_engine *uc;
    uc_context *pristine;          /* the context saved when the engine was new */
    int flush_tlb, remove_cache;   /* uc_ctl codes */
    int prot_all;
    int count;                     /* registers */
    const int *ids;
    void **in, **out;              /* pointers to each register's 8-byte slot */
    back_at_start_t back_at_start;
    /* this case */
    uint32_t *bases;               /* its linear pages; page i lives in frame i */
    uint32_t pages, capacity;
    uint64_t start, steps;
    int64_t interrupt, refused, refused_page;
    /* REP rounds Python handed over (x86lab_core_rounds): go on while the bytes at
     * code_frame are still ``code`` and steps < most_steps */
    bool rounds;
    uint8_t code[16];
    uint32_t code_length;
    uint64_t code_frame, most_steps;
};

static bool same_bytes(struct core *c) {
    /* The instruction's bytes are still the ones it started with. */
    uint8_t now[sizeof c->code];
    return uc_mem_read(c->uc, c->code_frame, now, c->code_length) == 0 &&
           memcmp(now, c->code, c->code_length) == 0;
}

static void on_code(uc_engine *uc, uint64_t address, uint32_t size, void *data) {
    /* Before each instruction: let the first run, stop before the next. */
    struct core *c = data;
    (void)size;
    c->steps += 1;
    if (c->steps == 1)
        return;
    if (address == c->start) {
        if (c->rounds && c->steps < c->most_steps && same_bytes(c))
            return;  /* a REP round like the one Python let go on */
        int answer = c->back_at_start(address, c->steps);
        if (answer == GO_ON)
            return;
        if (answer == RESTARTED) {
            c->steps -= 1;
            return;
        }
    }
    uc_emu_stop(uc);
}

static bool on_fill(uc_engine *uc, uint64_t vaddr, int access, struct uc_tlb_entry *entry,
                    void *data) {
    /* The TLB asks where a linear page lives: in its frame if the case has it. */
    struct core *c = data;
    uint32_t page = (uint32_t)vaddr & PAGE_BASE;
    (void)uc;
    for (uint32_t i = 0; i < c->pages; i++) {
        if (c->bases[i] == page) {
            entry->paddr = (uint64_t)i * PAGE_SIZE;
            entry->perms = c->prot_all;
            return true;
        }
    }
    c->refused = access;
    c->refused_page = page;
    return false;
}

static void on_interrupt(uc_engine *uc, uint32_t vector, void *data) {
    struct core *c = data;
    c->interrupt = vector;
    uc_emu_stop(uc);
}

static void on_access(uc_engine *uc, int access, uint64_t address, int size, int64_t value,
                      void *data) {
    /* The memory hooks' callback does nothing: its presence alone changes Unicorn's
     * code paths, which is what the engine "unicorn+memhooks" is there to test. */
    (void)uc, (void)access, (void)address, (void)size, (void)value, (void)data;
}

struct core *x86lab_core_new(uc_engine *uc, uc_context *pristine, int flush_tlb,
                             int remove_cache, int prot_all, int count, const int *ids,
                             uint64_t *in, uint64_t *out, back_at_start_t back_at_start) {
    struct core *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->in = calloc((size_t)count, sizeof *c->in);
    c->out = calloc((size_t)count, sizeof *c->out);
    if (c->in == NULL || c->out == NULL) {
        free(c->in), free(c->out), free(c);
        return NULL;
    }
    for (int i = 0; i < count; i++) {
        c->in[i] = &in[i];
        c->out[i] = &out[i];
    }
    c->uc = uc, c->pristine = pristine;
    c->flush_tlb = flush_tlb, c->remove_cache = remove_cache, c->prot_all = prot_all;
    c->count = count, c->ids = ids, c->back_at_start = back_at_start;
    return c;
}

void x86lab_core_free(struct core *c) {
    /* Called when the Python engine is collected (its Uc goes with it: nothing can run
     * the hooks that point here any more). Touches nothing of Unicorn's. */
    if (c != NULL)
        free(c->in), free(c->out), free(c);
}

uc_err x86lab_core_hook(struct core *c, int intr, int code, int fill, int memory) {
    /* The hooks, each for every address (before anything is translated: hooks added
     * later would not apply to translated code, unicorn #1606); memory 0: none. */
    uc_hook handle;
    uc_err err = uc_hook_add(c->uc, &handle, intr, (void *)on_interrupt, c, 1, 0);
    if (!err)
        err = uc_hook_add(c->uc, &handle, code, (void *)on_code, c, 1, 0);
    if (!err)
        err = uc_hook_add(c->uc, &handle, fill, (void *)on_fill, c, 1, 0);
    if (!err && memory)
        err = uc_hook_add(c->uc, &handle, memory, (void *)on_access, c, 1, 0);
    return err;
}

int x86lab_core_rounds(struct core *c, uint64_t frame, const uint8_t *code, uint32_t length,
                       uint64_t most_steps) {
    /* Asked from back_at_start when it lets a REP round go on: the later rounds go on
     * without asking while the bytes at ``frame`` (physical; the instruction lies in one
     * frame) are still ``code`` and the run has taken fewer than ``most_steps``
     * steps; anything else is asked again. Per-round Python calls cost ~3 us each:
     * ~6.7 us of a FORMS case on average, for the 1.5 % of cases that are REP strings
     * (issue 18). Returns 0, or -1 for bytes longer than an instruction can be. */
    if (length > sizeof c->code)
        return -1;
    memcpy(c->code, code, length);
    c->code_length = length, c->code_frame = frame, c->most_steps = most_steps;
    c->rounds = true;
    return 0;
}

uc_err x86lab_core_run(struct core *c, const uint8_t *loaded, uint32_t pages,
                       const uint32_t *bases, uint64_t begin, uint64_t until,
                       uint64_t remove_end, uint8_t *frames, int64_t *report) {
    /* One case: back to the pristine context; the case's pages into frames 0..pages-1
     * (``loaded``, in the order of ``bases``); every earlier translation of the TLB and
     * of the code's bytes forgotten; the registers in; run from ``begin`` to ``until``;
     * the registers out and the frames into ``frames``. ``report``: emu_start's status,
     * the code hook's steps, the interrupt, the refused access and its page, and a mask
     * of the pages whose bytes changed (bit i: page i; the top bit: page 63 or later).
     * Returns the error of a step before the run (0: none). */
    uc_err err;
    if (pages > c->capacity) {
        uint32_t *more = realloc(c->bases, pages * sizeof *more);
        if (more == NULL)
            return -1;
        c->bases = more, c->capacity = pages;
    }
    memcpy(c->bases, bases, pages * sizeof *bases);
    c->pages = pages;
    size_t size = (size_t)pages * PAGE_SIZE;
    if ((err = uc_context_restore(c->uc, c->pristine)) ||
        (err = uc_mem_write(c->uc, 0, loaded, size)) ||
        (err = uc_ctl(c->uc, c->flush_tlb)) ||
        (err = uc_ctl(c->uc, c->remove_cache, begin, remove_end)) ||
        (err = uc_reg_write_batch(c->uc, c->ids, c->in, c->count)))
        return err;
    c->start = begin, c->steps = 0, c->rounds = false;
    c->interrupt = NO_INTERRUPT, c->refused = NOT_REFUSED, c->refused_page = -1;
    report[0] = uc_emu_start(c->uc, begin, until, 0, 0);
    if ((err = uc_reg_read_batch(c->uc, c->ids, c->out, c->count)) ||
        (err = uc_mem_read(c->uc, 0, frames, size)))
        return err;
    uint64_t changed = 0;
    for (uint32_t i = 0; i < pages; i++) {
        size_t at = (size_t)i * PAGE_SIZE;
        if (memcmp(frames + at, loaded + at, PAGE_SIZE) != 0)
            changed |= (uint64_t)1 << (i < 63 ? i : 63);
    }
    report[1] = (int64_t)c->steps;
    report[2] = c->interrupt;
    report[3] = c->refused;
    report[4] = c->refused_page;
    report[5] = (int64_t)changed;
    return 0;
}
