//! Gantry's `RuntimeDefault` seccomp profile: allow everything except a deny-list of
//! syscalls that reach outside a container (kernel keyrings, tracing, mounts, modules,
//! clocks, reboot, new user namespaces); denied calls fail with `EPERM`.
//! Invariant: a deny-list, so a syscall unknown to this list (or to libseccomp) is allowed;
//! runc skips names its libseccomp does not know.

use serde_json::{json, Value};

/// Calls that fail with `EPERM` under `RuntimeDefault`.
pub const DENIED_SYSCALLS: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "personality",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "sysfs",
    "umount",
    "umount2",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
];

/// `CLONE_NEWUSER` from `<linux/sched.h>`.
const CLONE_NEWUSER: u64 = 0x1000_0000;

/// The `linux.seccomp` object of the runtime spec.
pub fn runtime_default_profile() -> Value {
    let eperm = i64::from(libc::EPERM);
    let mut syscalls = vec![json!({
        "names": DENIED_SYSCALLS,
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": eperm,
    })];
    // New user namespaces are the usual first step of kernel exploits: refuse
    // unshare(CLONE_NEWUSER) and clone(CLONE_NEWUSER, …). clone3 passes its flags in
    // memory, which seccomp cannot see, so it fails with ENOSYS and libc falls back to clone.
    for name in ["unshare", "clone"] {
        syscalls.push(json!({
            "names": [name],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": eperm,
            "args": [{ "index": 0, "value": CLONE_NEWUSER, "valueTwo": CLONE_NEWUSER,
                       "op": "SCMP_CMP_MASKED_EQ" }],
        }));
    }
    syscalls.push(json!({
        "names": ["clone3"],
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": i64::from(libc::ENOSYS),
    }));
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": architectures(),
        "syscalls": syscalls,
    })
}

fn architectures() -> Vec<&'static str> {
    if cfg!(target_arch = "aarch64") {
        vec!["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    } else {
        vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    }
}
