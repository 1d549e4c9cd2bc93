// Preloaded into the server under valgrind by bench/instructions.py, and nowhere else.
//
// libdispatch parks the main thread with sigsuspend() on a signal mask it keeps in read-only
// memory. Valgrind 3.19 (Debian 12) edits the mask it is given in place before the system call,
// and dies with a SIGSEGV of its own on a read-only one. This sigsuspend() hands the kernel a
// copy on the stack instead; it behaves the same.
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, _NSIG / 8);
}
