/* skipill: linked into test-i386 so that one instruction an engine lacks hides nothing else.
 *
 * Why: v86 raises #UD at FBLD, so test-i386 died with SIGILL in test_fbcd and every line
 * after it (412 of them) was never compared. With this file linked in, a SIGILL at an
 * instruction of the program's own text is recorded and the instruction is stepped over;
 * the program goes on and the rest of its output is compared as usual. The skipped
 * instruction's own results are of course wrong (the report says which lines follow a
 * skip). On a CPU that executes every instruction, nothing here ever runs: the output is
 * the same with or without it.
 *
 * Instruction lengths come from a map the host made with objdump from this very binary
 * (conformance/instruction_map.py), named by X86LAB_INSN_MAP:
 *     u32 count, u32 address[count] (ascending), u8 length[count], all little-endian.
 * Each skip is written to the file named by X86LAB_SKIP_LOG, one line:
 *     skipped eip=0804a1b2 len=3 bytes=df 2c 24
 * An address the map does not know (code made at run time) is not skipped: the handler
 * steps aside and the instruction dies as it would have without this file.
 *
 * test-i386's own exception tests install their own SIGILL handler, which then replaces
 * this one for the rest of the run (after test_floats and test_bcd, where v86 needs it).
 */
#define _GNU_SOURCE /* REG_EIP */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/ucontext.h>
#include <unistd.h>

#define MAX_SKIPS 100000

static uint32_t map_count;
static const uint32_t *map_address;
static const uint8_t *map_length;
static int log_fd = -1;
static unsigned long skips;

static int instruction_length(uint32_t eip) {
    uint32_t low = 0, high = map_count;
    while (low < high) {
        uint32_t middle = low + (high - low) / 2;
        if (map_address[middle] < eip) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    return low < map_count && map_address[low] == eip ? map_length[low] : 0;
}

static char *hex(char *out, uint32_t value, int digits) {
    static const char digit[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = digit[value & 15];
        value >>= 4;
    }
    return out + digits;
}

static void record(uint32_t eip, int length) {
    char line[128], *p = line;
    const uint8_t *code = (const uint8_t *)(uintptr_t)eip;
    if (log_fd < 0) {
        return;
    }
    memcpy(p, "skipped eip=", 12);
    p = hex(p + 12, eip, 8);
    memcpy(p, " len=", 5);
    p = hex(p + 5, (uint32_t)length, 2);
    memcpy(p, " bytes=", 7);
    p += 7;
    for (int i = 0; i < length; i++) {
        p = hex(p, code[i], 2);
        *p++ = i + 1 < length ? ' ' : '\n';
    }
    (void)!write(log_fd, line, (size_t)(p - line));
}

static void on_sigill(int number, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    uint32_t eip = (uint32_t)uc->uc_mcontext.gregs[REG_EIP];
    int length = instruction_length(eip);
    (void)number;
    (void)info;
    if (length == 0 || ++skips > MAX_SKIPS) {
        signal(SIGILL, SIG_DFL);  /* the instruction runs again and dies as before */
        return;
    }
    record(eip, length);
    uc->uc_mcontext.gregs[REG_EIP] = (greg_t)(eip + (uint32_t)length);
}

static void *read_whole(const char *path, size_t *size) {
    struct stat facts;
    int fd = open(path, O_RDONLY);
    uint8_t *data;
    size_t done = 0;
    if (fd < 0 || fstat(fd, &facts) != 0 || facts.st_size < 4) {
        return NULL;
    }
    data = malloc((size_t)facts.st_size);
    while (data && done < (size_t)facts.st_size) {
        ssize_t got = read(fd, data + done, (size_t)facts.st_size - done);
        if (got <= 0) {
            free(data);
            data = NULL;
        }
        done += got > 0 ? (size_t)got : 0;
    }
    close(fd);
    *size = done;
    return data;
}

__attribute__((constructor)) static void skip_missing_instructions(void) {
    const char *map_path = getenv("X86LAB_INSN_MAP");
    const char *log_path = getenv("X86LAB_SKIP_LOG");
    struct sigaction action;
    size_t size = 0;
    uint8_t *map;
    if (map_path == NULL || (map = read_whole(map_path, &size)) == NULL) {
        return;
    }
    memcpy(&map_count, map, 4);
    if (size != 4 + (size_t)map_count * 5) {
        free(map);
        map_count = 0;
        return;
    }
    map_address = (const uint32_t *)(map + 4);
    map_length = map + 4 + (size_t)map_count * 4;
    if (log_path != NULL) {
        log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    }
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigill;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    sigaction(SIGILL, &action, NULL);
}
