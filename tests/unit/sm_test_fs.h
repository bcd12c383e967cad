/*
 * sm_test_fs.h - file-system helpers shared by the unit tests that work on
 * real directories (storage, crash, cache, metadata tests).
 */
#ifndef SM_TEST_FS_H
#define SM_TEST_FS_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Remove dir and everything below it (no symlinks followed); a missing
 * dir is fine. */
static inline void sm_test_rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char p[1024];
        int n = snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (n < 0 || (size_t)n >= sizeof p)
            continue; /* the test never makes such paths */
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            sm_test_rm_rf(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

#endif
