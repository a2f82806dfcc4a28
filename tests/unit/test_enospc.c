/* A real full disk: a 12 MiB tmpfs mounted by the test (root only) fills up; the error is clear and
 * nothing acknowledged is lost. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "io_harness.h"

static int skip(const char *why)
{
	printf("skipped: %s\n", why);
	return 77;
}

int main(void)
{
	static struct iot t;
	char mnt[] = "/var/tmp/lcraft-enospc-XXXXXX";

	if (geteuid() != 0)
		return skip("needs root to mount a small tmpfs");
	if (!mkdtemp(mnt))
		return skip("cannot make a mount point under /var/tmp");
	if (mount("lcraft-enospc", mnt, "tmpfs", 0, "size=12m") < 0) {
		rmdir(mnt);
		return skip("cannot mount tmpfs here (no CAP_SYS_ADMIN in this container?)");
	}
	setenv("LCR_TEST_DIR", mnt, 1);
	iot_init(&t, "full");
	int rc = iot_open(&t);
	if (rc < 0) {
		fprintf(stderr, "open: %s\n", t.why);
		goto out;
	}
	/* 4 MiB segments on 12 MiB: the second or third one cannot be made. */
	uint64_t next = 1, acked = 0;
	int err = 0;
	for (int round = 0; round < 400 && !err; round++) {
		err = iot_append(&t, next, 100, 1, 1, 1000);
		if (err == 0) {
			next += 100;
			err = iot_sync(&t);
			if (err == 0)
				acked = next - 1;
		}
	}
	printf("acknowledged %llu entries, then: %s\n", (unsigned long long)acked, strerror(-err));
	rc = 1;
	if (err != -ENOSPC) {
		fprintf(stderr, "expected ENOSPC, got %d\n", err);
		goto out;
	}
	iot_close(&t);
	/* Free room (nothing of the log's), reopen: everything acknowledged is there. */
	rc = iot_open(&t);
	if (rc < 0) {
		fprintf(stderr, "reopen: %s\n", t.why);
		rc = 1;
		goto out;
	}
	rc = iot_check_disk(&t, 1, acked, 1, 1) == 0 && lcr_log_last(t.log).index >= acked ? 0 : 1;
	printf("%s: %llu acknowledged entries readable after reopening\n", rc ? "FAIL" : "ok",
	       (unsigned long long)acked);
out:
	iot_fini(&t);
	umount2(mnt, MNT_DETACH);
	rmdir(mnt);
	return rc;
}
