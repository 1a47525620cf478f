//! Runtime GPU probe. Without the `nvcomp-gpu` feature there is no GPU code
//! at all; with it, the CUDA driver is loaded dynamically, so the build needs
//! no CUDA toolkit and a machine without a driver simply reports `false`.

#[cfg(feature = "nvcomp-gpu")]
pub fn available() -> bool {
    // `CudaContext::new` panics when libcuda is missing: check first, and
    // still guard against a panic in a half-installed driver.
    // SAFETY: only tries to dlopen libcuda; no driver state is touched.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return false;
    }
    std::panic::catch_unwind(|| cudarc::driver::CudaContext::new(0).is_ok()).unwrap_or(false)
}

#[cfg(not(feature = "nvcomp-gpu"))]
pub fn available() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn probe_answers_without_panicking() {
        // No GPU on build machines or CI: the probe must say so, not crash.
        let _ = super::available();
        #[cfg(not(feature = "nvcomp-gpu"))]
        assert!(!super::available());
    }
}
