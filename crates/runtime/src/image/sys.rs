//! The few syscalls std lacks: overlayfs whiteouts (mknod 0/0, the opaque xattr) and
//! mount/umount of the overlay.
//! Every call passes NUL-terminated copies of its paths; nothing here keeps pointers.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

const OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque\0";

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates an overlayfs whiteout (character device 0/0) at `path`.
pub fn mknod_whiteout(path: &Path) -> io::Result<()> {
    let c = cstr(path)?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    check(unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, libc::makedev(0, 0)) })
}

/// Marks directory `path` opaque for overlayfs (`trusted.overlay.opaque=y`).
pub fn set_opaque(path: &Path) -> io::Result<()> {
    let c = cstr(path)?;
    let value = b"y";
    // SAFETY: both strings are NUL-terminated and live across the call; the value pointer and
    // length describe `value`.
    check(unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            OPAQUE_XATTR.as_ptr().cast(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

/// Whether directory `path` carries the opaque marker.
pub fn is_opaque(path: &Path) -> io::Result<bool> {
    let c = cstr(path)?;
    let mut buf = [0u8; 4];
    // SAFETY: the strings are NUL-terminated; `buf` is writable for its full length.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            OPAQUE_XATTR.as_ptr().cast(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) | Some(libc::ERANGE) => Ok(false),
            _ => Err(e),
        };
    }
    Ok(n == 1 && buf[0] == b'y')
}

/// Mounts an overlay at `target` with the given option string.
pub fn mount_overlay(target: &Path, options: &str) -> io::Result<()> {
    let t = cstr(target)?;
    let data = CString::new(options)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "options contain NUL"))?;
    let fstype = c"overlay";
    // SAFETY: all pointers are NUL-terminated strings alive for the call; flags are plain bits.
    check(unsafe {
        libc::mount(
            fstype.as_ptr(),
            t.as_ptr(),
            fstype.as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    })
}

/// Unmounts `target`; `EINVAL` (not a mount point) and `ENOENT` count as done.
pub fn unmount(target: &Path) -> io::Result<()> {
    let t = cstr(target)?;
    // SAFETY: `t` is a NUL-terminated string alive for the call.
    match check(unsafe { libc::umount2(t.as_ptr(), 0) }) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            // SAFETY: as above; MNT_DETACH lazily unmounts a still-busy overlay.
            check(unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) })
        }
        other => other,
    }
}
