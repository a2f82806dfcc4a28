/* SPDX-License-Identifier: MIT */
/*
 * LCR_PUT: append printf-style text to a bounded buffer, the way every
 * metrics renderer builds its JSON. The enclosing function has `char *buf`,
 * `size_t len` and `size_t o` (bytes written so far) in scope and returns int.
 * Text past `len` is cut (snprintf), but `o` keeps counting, so the function
 * can tell the size it needed (`o < len ? (int)o : -ENOSPC`). An encoding
 * error returns -EINVAL from the enclosing function.
 */
#ifndef LCR_PUT_H
#define LCR_PUT_H

#include <errno.h>
#include <stdio.h>

#define LCR_PUT(...)                                                                               \
	do {                                                                                       \
		int k_ = snprintf(buf + o, len > o ? len - o : 0, __VA_ARGS__);                    \
		if (k_ < 0)                                                                        \
			return -EINVAL;                                                            \
		o += (size_t)k_;                                                                   \
	} while (0)

#endif /* LCR_PUT_H */
