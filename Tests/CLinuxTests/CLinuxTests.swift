import CLinux
import Glibc
import Testing

/// The shim's functions reach the real system calls with the flags Glibc does not import.
@Suite struct CLinuxTests {
    @Test func memfdCanBeSizedAndSealed() throws {
        let fd = clinux_memfd_create("swift-vmbus-test", CLINUX_MFD_CLOEXEC | CLINUX_MFD_ALLOW_SEALING)
        #expect(fd >= 0)
        defer { close(fd) }
        #expect(ftruncate(fd, 8192) == 0)
        #expect(clinux_add_seals(fd, CLINUX_F_SEAL_SHRINK | CLINUX_F_SEAL_GROW) == 0)
        let seals = clinux_get_seals(fd)
        #expect(seals & CLINUX_F_SEAL_SHRINK != 0 && seals & CLINUX_F_SEAL_GROW != 0)
        // A sealed memfd refuses to change size.
        #expect(ftruncate(fd, 4096) == -1)
    }

    @Test func eventfdCountsWrites() {
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        #expect(fd >= 0)
        defer { close(fd) }
        var one: UInt64 = 1
        var two: UInt64 = 2
        #expect(write(fd, &one, 8) == 8)
        #expect(write(fd, &two, 8) == 8)
        var total: UInt64 = 0
        #expect(read(fd, &total, 8) == 8)
        #expect(total == 3)
        #expect(read(fd, &total, 8) == -1 && errno == EAGAIN)
    }

    @Test func cmsgSizesMatchTheKernelABI() {
        // One fd: 16-byte header + 4 bytes of data, padded to 8.
        #expect(clinux_cmsg_len(4) == 20)
        #expect(clinux_cmsg_space(4) == 24)
        #expect(clinux_cmsg_space(12) == 32)
    }
}
