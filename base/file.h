/* SPDX-License-Identifier: MIT */
/*
 * Small files read whole and replaced durably: the node's held records, its
 * boot file, the rejoin check's reads of a data directory.
 */
#ifndef LCR_FILE_H
#define LCR_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* Up to `cap` bytes of `fd` from where it stands (EINTR retried): the count, or -errno. */
ssize_t lcr_read_upto(int fd, void *buf, size_t cap);

/*
 * Make `path` (a file in directory `dir`) hold `len` bytes of `buf`, durably
 * and whole or not at all: written to `path`.tmp (created with `mode`),
 * fsync'ed, renamed over `path`, then `dir` fsync'ed. 0, or -errno (-EIO for
 * a short write); on an error `path` is as it was.
 */
int lcr_file_replace(const char *dir, const char *path, const void *buf, size_t len, mode_t mode);

#endif /* LCR_FILE_H */
