/*
 * hilfw: hilfarm's own test firmware for Cortex-M3 boards under QEMU.
 *
 * It prints "HILFW <VERSION> booting on <BOARD>", then a "hilfw> " prompt,
 * and answers: version, echo X, led on|off, uptime, reboot, hang, help.
 * Typed characters are echoed; "\r", "\n" and "\r\n" each end a line.
 *
 * Freestanding: no libc, no startup files. Build (see mk/firmware.mk):
 *   arm-none-eabi-gcc -mcpu=cortex-m3 -mthumb -Os -ffreestanding \
 *     -fno-tree-loop-distribute-patterns -nostdlib -nostartfiles \
 *     -Wl,-T,fw.ld -Wl,--gc-sections -DVERSION='"1.2.3"' -o fw.elf fw.c
 * Add -DBOARD_MPS2_AN385 for qemu-system-arm -M mps2-an385 (default:
 * -M lm3s6965evb).
 */
#include <stdint.h>

#ifndef VERSION
#define VERSION "0.0.0-dev"
#endif

#define REG(addr) (*(volatile uint32_t *)(addr))

#ifdef BOARD_MPS2_AN385
#define BOARD "mps2-an385"
/* CMSDK APB UART0 */
#define UART_BASE 0x40004000u
#define UART_DATA REG(UART_BASE + 0x00)
#define UART_STATE REG(UART_BASE + 0x04) /* bit0 TX full, bit1 RX full */
#define UART_CTRL REG(UART_BASE + 0x08)  /* bit0 TX enable, bit1 RX enable */
#define UART_BAUDDIV REG(UART_BASE + 0x10)
#define CPU_HZ 25000000u
static void uart_init(void) {
	UART_BAUDDIV = 16;
	UART_CTRL = 0x3;
}
static int uart_tx_full(void) { return UART_STATE & 0x1; }
static int uart_rx_ready(void) { return UART_STATE & 0x2; }
#else
#define BOARD "lm3s6965evb"
/* Stellaris PL011 UART0 */
#define UART_BASE 0x4000C000u
#define UART_DR REG(UART_BASE + 0x00)
#define UART_FR REG(UART_BASE + 0x18) /* bit4 RXFE, bit5 TXFF */
#define UART_CTL REG(UART_BASE + 0x30)
#define UART_DATA UART_DR
#define CPU_HZ 12000000u
static void uart_init(void) { UART_CTL = 0x301; /* UARTEN, TXE, RXE */ }
static int uart_tx_full(void) { return UART_FR & (1u << 5); }
static int uart_rx_ready(void) { return !(UART_FR & (1u << 4)); }
#endif

/* System control block and SysTick. */
#define AIRCR REG(0xE000ED0C)
#define SYST_CSR REG(0xE000E010)
#define SYST_RVR REG(0xE000E014)
#define SYST_CVR REG(0xE000E018)

static volatile uint32_t ticks_ms;
static int led;

static void putc_(char c) {
	while (uart_tx_full())
		;
	UART_DATA = (uint32_t)c;
}

static void puts_(const char *s) {
	while (*s)
		putc_(*s++);
}

static void putu(uint32_t v) {
	char b[11];
	int i = 0;
	do {
		b[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i)
		putc_(b[--i]);
}

static int getc_(void) {
	while (!uart_rx_ready())
		;
	return (int)(UART_DATA & 0xff);
}

/* word returns 1 if s starts with the word w (followed by a space or the end). */
static int word(const char *s, const char *w, const char **rest) {
	while (*w)
		if (*s++ != *w++)
			return 0;
	if (*s != 0 && *s != ' ')
		return 0;
	while (*s == ' ')
		s++;
	*rest = s;
	return 1;
}

static int streq(const char *a, const char *b) {
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static void command(const char *line) {
	const char *arg;
	while (*line == ' ')
		line++;
	if (*line == 0)
		return;
	if (word(line, "version", &arg)) {
		puts_(VERSION "\r\n");
	} else if (word(line, "echo", &arg)) {
		puts_(arg);
		puts_("\r\n");
	} else if (word(line, "led", &arg)) {
		if (streq(arg, "on"))
			led = 1;
		else if (streq(arg, "off"))
			led = 0;
		else {
			puts_("usage: led on|off\r\n");
			return;
		}
		puts_(led ? "led=on\r\n" : "led=off\r\n");
	} else if (word(line, "uptime", &arg)) {
		puts_("uptime=");
		putu(ticks_ms);
		puts_("ms\r\n");
	} else if (word(line, "reboot", &arg)) {
		puts_("rebooting\r\n");
		AIRCR = 0x05FA0004; /* VECTKEY | SYSRESETREQ */
		for (;;)
			;
	} else if (word(line, "hang", &arg)) {
		__asm__ volatile("cpsid i");
		for (;;)
			;
	} else if (word(line, "help", &arg)) {
		puts_("commands: version echo led uptime reboot hang help\r\n");
	} else {
		puts_("unknown command: ");
		puts_(line);
		puts_("\r\n");
	}
}

void systick_handler(void) { ticks_ms++; }

int main(void) {
	static char line[128];
	unsigned n = 0;
	int prev_cr = 0;

	uart_init();
	SYST_RVR = CPU_HZ / 1000 - 1;
	SYST_CVR = 0;
	SYST_CSR = 0x7; /* processor clock, interrupt, enable */

	puts_("HILFW " VERSION " booting on " BOARD "\r\n");
	puts_("hilfw> ");
	for (;;) {
		int c = getc_();
		if (c == '\n' && prev_cr) {
			prev_cr = 0;
			continue;
		}
		prev_cr = c == '\r';
		if (c == '\r' || c == '\n') {
			puts_("\r\n");
			line[n] = 0;
			command(line);
			n = 0;
			puts_("hilfw> ");
		} else if (c == 0x7f || c == 0x08) {
			if (n > 0) {
				n--;
				puts_("\b \b");
			}
		} else if (n < sizeof line - 1) {
			line[n++] = (char)c;
			putc_((char)c);
		}
	}
}

/* Startup: copy .data, zero .bss, run main. */
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

void reset_handler(void) {
	uint32_t *src = &_sidata, *dst = &_sdata;
	while (dst < &_edata)
		*dst++ = *src++;
	for (dst = &_sbss; dst < &_ebss;)
		*dst++ = 0;
	main();
	for (;;)
		;
}

void fault_handler(void) {
	puts_("\r\nHardFault\r\n");
	for (;;)
		;
}

void default_handler(void) {
	for (;;)
		;
}

__attribute__((section(".vectors"), used)) static void *const vectors[16] = {
	&_estack,          /* initial stack pointer */
	reset_handler,     /* reset */
	default_handler,   /* NMI */
	fault_handler,     /* HardFault */
	fault_handler,     /* MemManage */
	fault_handler,     /* BusFault */
	fault_handler,     /* UsageFault */
	0, 0, 0, 0,        /* reserved */
	default_handler,   /* SVCall */
	default_handler,   /* debug monitor */
	0,                 /* reserved */
	default_handler,   /* PendSV */
	systick_handler,   /* SysTick */
};
