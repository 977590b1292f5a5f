/* Prints glibc's wcwidth() as runs "first last width" for U+0080 to
 * U+10FFFF in the C.UTF-8 locale (-2 for surrogates, which are not
 * characters); used by scripts/gen-width-table. */
#define _XOPEN_SOURCE 700
#include <locale.h>
#include <stdio.h>
#include <wchar.h>

int main(void)
{
	int prev = -9;
	unsigned start = 0;

	if (setlocale(LC_ALL, "C.UTF-8") == NULL)
		return 1;
	for (unsigned cp = 0x80; cp <= 0x110000; cp++) {
		int w;
		if (cp == 0x110000)
			w = -9;
		else if (cp >= 0xd800 && cp <= 0xdfff)
			w = -2;
		else
			w = wcwidth((wchar_t)cp);
		if (w != prev) {
			if (prev != -9)
				printf("%x %x %d\n", start, cp - 1, prev);
			prev = w;
			start = cp;
		}
	}
	return 0;
}
