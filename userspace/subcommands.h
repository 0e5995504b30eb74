/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One function per subcommand, one file each. argv[0] is the subcommand's
 * name. Each returns 0, or -1 with the error recorded (error.h): amber.c
 * prints it and exits with its class.
 */
#ifndef AMBER_SUBCOMMANDS_H
#define AMBER_SUBCOMMANDS_H

#include <stdint.h>

int format_main(int argc, char **argv);
int create_main(int argc, char **argv);
int remove_main(int argc, char **argv);
int status_main(int argc, char **argv);
int snap_main(int argc, char **argv);
int drop_main(int argc, char **argv);
int backup_main(int argc, char **argv);
int restore_main(int argc, char **argv);
int verify_main(int argc, char **argv);
int consolidate_main(int argc, char **argv);
int list_main(int argc, char **argv);
int info_main(int argc, char **argv);
int daemon_main(int argc, char **argv);
int key_main(int argc, char **argv);
int mount_main(int argc, char **argv);
int umount_main(int argc, char **argv);

/* Lay out and write a new store on @fd (shared by format and create). */
struct store_layout;
int write_new_store(int fd, const char *path, uint64_t origin_bytes, uint64_t chunk_bytes,
		    uint64_t epochs, struct store_layout *out);
/* Size of a volume, opened read-only. */
int origin_bytes(const char *path, uint64_t *bytes);

#endif
