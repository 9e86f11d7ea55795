/* The bare-metal runner: a multiboot kernel that runs the cases the host linked in
 * (section .cases, written by differential/bare_metal/image.py) one after the other and
 * prints what each left behind on COM1. Every policy lives on the host: a case brings
 * its own GDT, IDT, TSSs, page tables, code and handlers as plain memory writes, and
 * names the memory ranges to print afterwards. This file only loads the case's system
 * registers, jumps to its entry at CPL 0, and takes control back when the case's code
 * jumps far to bm_exit (selector 0x08 of the case's GDT, flat code, DPL 0). A case
 * starts with every general register and CR2 at 0, so nothing of the runner's (where a
 * rerun image placed the record) or of the boot loader's reaches the results.
 *
 * Case record (little-endian dwords; offsets in bytes; see image.py, which writes it):
 *   0 magic "CASE" (0 ends the list)   4 index        8 length of the whole record
 *  12 CR0  16 CR3  20 CR4  24 GDTR (limit16, base32, pad16)  32 IDTR (the same)
 *  40 TR selector (0: none)  44 LDTR selector (0: none)  48 ESP  52 SS  56 EIP  60 CS
 *  64 number of writes  68 number of dumps  72 writes (address, length, bytes padded
 *  to 4; with length bit 31 set, a fill: one dword whose low byte fills the range),
 *  then dumps (address, length).
 * Output, one line each: "BM BEGIN", then per case "C index", "M address hexbytes" per
 * dump, "E index"; at the end "BM END". A fault in the runner itself prints
 * "BM RUNNER-FAULT vector" and stops.
 */
#define COM1 0x3f8
#define CASE_MAGIC 0x45534143

/* Load the flat data selector 0x10 everywhere and the runner's stack: no stack is used
 * before, since the one in force may be anything (Multiboot leaves ESP undefined; a case
 * may end on any stack). */
        .macro  flat_segments
        movw    $0x10, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %fs
        movw    %ax, %gs
        movw    %ax, %ss
        movl    $stack_top, %esp
        .endm

        .section .text.entry, "ax"
        .code32
        .globl _start
_start:
        jmp     start
        .p2align 2
multiboot_header:                       /* Multiboot 0.6.96, 3.1.1: no flags (an ELF) */
        .long   0x1BADB002, 0, -0x1BADB002

        .org    0x40
        .globl  bm_exit                 /* a case ends with ljmp $0x08, $bm_exit */
bm_exit:
        cli
        movl    $0x11, %eax             /* PE | ET: paging, WP, TS... off again */
        movl    %eax, %cr0
        xorl    %eax, %eax
        movl    %eax, %cr4
        lgdt    %cs:runner_gdtr         /* DS may be null or anything here */
        ljmp    $0x08, $1f
1:      flat_segments
        lidt    runner_idtr
        pushl   $2
        popfl
        movb    $0x20, %al              /* end any interrupt a case took (EOI), then */
        outb    %al, $0x20              /* mask every IRQ again */
        outb    %al, $0xa0
        movb    $0xff, %al
        outb    %al, $0x21
        outb    %al, $0xa1
        movl    current_case, %ebx
        call    dump_case
        movl    current_case, %ebx
        addl    8(%ebx), %ebx
        jmp     run_case

start:
        cli
        lgdt    runner_gdtr
        ljmp    $0x08, $1f
1:      flat_segments
        movl    $runner_stubs, %eax     /* the runner's IDT: gate offsets filled in */
        movl    $runner_idt, %edi
        movl    $32, %ecx
2:      movw    %ax, (%edi)
        movl    %eax, %edx
        shrl    $16, %edx
        movw    %dx, 6(%edi)
        addl    $7, %eax
        addl    $8, %edi
        loop    2b
        lidt    runner_idtr
        pushl   $2
        popfl
        movb    $0xff, %al              /* mask every IRQ at both 8259As: no timer */
        outb    %al, $0x21
        outb    %al, $0xa1
        call    serial_init
        movl    $text_begin, %esi
        call    puts
        movl    $cases_start, %ebx

/* run_case: EBX = the record */
run_case:
        cmpl    $CASE_MAGIC, (%ebx)
        jne     finished
        movl    %ebx, current_case
        movb    $'C', %al
        call    putc
        movl    4(%ebx), %eax
        call    put_space_hex
        call    newline
        movl    64(%ebx), %ecx          /* the writes */
        leal    72(%ebx), %esi
2:      jecxz   3f
        pushl   %ecx
        movl    (%esi), %edi
        movl    4(%esi), %ecx
        leal    8(%esi), %esi
        cld
        btrl    $31, %ecx               /* bit 31: fill with the byte that follows */
        jc      7f
        movl    %ecx, %edx
        rep movsb
        negl    %edx                    /* skip the padding to a dword */
        andl    $3, %edx
        addl    %edx, %esi
        jmp     4f
7:      lodsl
        rep stosb
4:      popl    %ecx
        decl    %ecx
        jmp     2b
3:      movl    16(%ebx), %eax
        movl    %eax, %cr3
        movl    20(%ebx), %eax
        movl    %eax, %cr4
        lgdt    24(%ebx)
        lidt    32(%ebx)
        ljmp    $0x08, $5f              /* the case's 0x08 and 0x10 are flat, DPL 0 */
5:      flat_segments
        movl    40(%ebx), %eax
        testl   %eax, %eax
        jz      6f
        ltr     %ax
6:      movl    44(%ebx), %eax
        lldt    %ax                     /* 0 leaves LDTR null */
        movl    56(%ebx), %eax          /* the entry, where no register is needed */
        movl    %eax, case_entry
        movl    60(%ebx), %eax
        movl    %eax, case_entry + 4
        xorl    %eax, %eax
        movl    %eax, %cr2              /* no fault address left from an earlier case */
        movl    12(%ebx), %eax
        movl    %eax, %cr0
        lss     48(%ebx), %esp
        xorl    %eax, %eax              /* every register 0: nothing of the runner's */
        xorl    %ebx, %ebx              /* (where a rerun image put the record) or */
        xorl    %ecx, %ecx              /* the boot loader's (EBP) reaches the case */
        xorl    %edx, %edx
        xorl    %esi, %esi
        xorl    %edi, %edi
        xorl    %ebp, %ebp
        ljmp    *case_entry

finished:
        movl    $text_end, %esi
        call    puts
halt:   cli
        hlt
        jmp     halt

/* dump_case: EBX = the record; prints its dumps, then "E index" */
dump_case:
        movl    64(%ebx), %ecx
        leal    72(%ebx), %esi
1:      jecxz   2f                      /* step over the writes */
        movl    4(%esi), %eax
        addl    $3, %eax
        andl    $~3, %eax
        btl     $31, 4(%esi)            /* a fill carries one dword */
        jnc     8f
        movl    $4, %eax
8:      leal    8(%esi,%eax), %esi
        decl    %ecx
        jmp     1b
2:      movl    68(%ebx), %ecx
3:      jecxz   5f
        pushl   %ecx
        movb    $'M', %al
        call    putc
        movl    (%esi), %eax
        call    put_space_hex
        movb    $' ', %al
        call    putc
        movl    (%esi), %edi
        movl    4(%esi), %ecx
4:      jecxz   6f
        movb    (%edi), %al
        call    put_hex8
        incl    %edi
        decl    %ecx
        jmp     4b
6:      call    newline
        addl    $8, %esi
        popl    %ecx
        decl    %ecx
        jmp     3b
5:      movb    $'E', %al
        call    putc
        movl    4(%ebx), %eax
        call    put_space_hex
        jmp     newline

/* COM1: 115200 8N1, FIFOs on, no interrupts */
serial_init:
        movw    $COM1 + 1, %dx
        xorb    %al, %al
        outb    %al, %dx
        movw    $COM1 + 3, %dx
        movb    $0x80, %al
        outb    %al, %dx
        movw    $COM1, %dx
        movb    $1, %al
        outb    %al, %dx
        movw    $COM1 + 1, %dx
        xorb    %al, %al
        outb    %al, %dx
        movw    $COM1 + 3, %dx
        movb    $3, %al
        outb    %al, %dx
        movw    $COM1 + 2, %dx
        movb    $0xc7, %al
        outb    %al, %dx
        movw    $COM1 + 4, %dx
        movb    $3, %al
        outb    %al, %dx
        ret

putc:                                   /* AL; keeps every register */
        pushl   %edx
        pushl   %eax
        movw    $COM1 + 5, %dx
1:      inb     %dx, %al
        testb   $0x20, %al
        jz      1b
        popl    %eax
        movw    $COM1, %dx
        outb    %al, %dx
        popl    %edx
        ret

puts:                                   /* ESI: a zero-terminated text */
        lodsb
        testb   %al, %al
        jz      1f
        call    putc
        jmp     puts
1:      ret

newline:
        pushl   %eax
        movb    $'\n', %al
        call    putc
        popl    %eax
        ret

put_space_hex:                          /* " " then EAX in 8 hex digits */
        pushl   %eax
        movb    $' ', %al
        call    putc
        popl    %eax
        roll    $8, %eax
        call    put_hex8
        roll    $8, %eax
        call    put_hex8
        roll    $8, %eax
        call    put_hex8
        roll    $8, %eax
        /* fall through */
put_hex8:                               /* AL in 2 hex digits; keeps EAX */
        pushl   %eax
        pushl   %eax
        shrb    $4, %al
        call    put_nibble
        popl    %eax
        call    put_nibble
        popl    %eax
        ret
put_nibble:
        andb    $0x0f, %al
        addb    $'0', %al
        cmpb    $'9', %al
        jbe     1f
        addb    $'a' - '9' - 1, %al
1:      jmp     putc

/* The runner's own IDT: any exception here is a runner bug, reported and final. */
        .set    vector, 0
runner_stubs:
        .rept   32                      /* 7 bytes each: push imm8, jmp rel32 */
        .byte   0x6a, vector
        .byte   0xe9
        .long   runner_fault - . - 4
        .set    vector, vector + 1
        .endr
runner_fault:
        call    flat_segments_keep_stack
        movl    $text_fault, %esi
        call    puts
        popl    %eax
        call    put_space_hex
        call    newline
        jmp     halt
flat_segments_keep_stack:
        movw    $0x10, %ax
        movw    %ax, %ds
        movw    %ax, %es
        ret

        .section .data
        .p2align 3
runner_gdt:
        .quad   0
        .quad   0x00CF9A000000FFFF      /* 0x08: flat code, DPL 0, 32-bit */
        .quad   0x00CF92000000FFFF      /* 0x10: flat data, DPL 0 */
runner_gdt_end:
runner_gdtr:
        .word   runner_gdt_end - runner_gdt - 1
        .long   runner_gdt
        .p2align 3
runner_idt:
        .rept   32                      /* interrupt gates; offsets filled in at start */
        .word   0, 0x08, 0x8E00, 0
        .endr
runner_idt_end:
runner_idtr:
        .word   runner_idt_end - runner_idt - 1
        .long   runner_idt
current_case:
        .long   0
case_entry:                             /* EIP, CS of the case being started */
        .long   0, 0
text_begin:
        .asciz  "BM BEGIN\n"
text_end:
        .asciz  "BM END\n"
text_fault:
        .asciz  "BM RUNNER-FAULT"

        .section .bss
        .p2align 4
        .space  8192
stack_top:
