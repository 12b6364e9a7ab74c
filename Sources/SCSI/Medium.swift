/// Where a medium's bytes come from. Implemented outside this module (a file or block device);
/// the emulator does no I/O of its own.
///
/// Implementations must be safe to call from many threads at once.
public protocol BlockSource: AnyObject, Sendable {
    /// Size of the medium in bytes; need not be a multiple of 2048 (a short last block reads as zeros).
    /// Read once, when a `Medium` is made from the source.
    var byteCount: UInt64 { get }
    /// A descriptor whose byte at file offset X is the medium's byte X, for zero-copy (splice)
    /// callers; nil if none.
    var fileDescriptor: Int32? { get }
    /// Throws if the backing changed or failed since it was loaded. The emulator calls it before
    /// serving each READ (after releasing its own lock).
    func validate() throws(MediumError)
    /// Copies bytes at `offset` into `buffer`; returns how many (short only at end of medium).
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(MediumError) -> Int
    /// For zero-copy (splice) callers: a descriptor that holds the medium's `length` bytes at
    /// `offset`, and where, kept there until the lease ends; nil when there is none (callers
    /// copy with `read`). The default is `fileDescriptor` at the same offset, with nothing to end.
    func lease(offset: UInt64, length: Int) throws(MediumError) -> ByteLease?
}

extension BlockSource {
    public func lease(offset: UInt64, length: Int) throws(MediumError) -> ByteLease? {
        fileDescriptor.map { ByteLease(descriptor: $0, offset: offset) }
    }
}

/// Bytes of a medium held in a descriptor for as long as a reply reads them (see
/// `BlockSource.lease`): a cache may not drop them before `end()`.
public struct ByteLease: Sendable {
    public let descriptor: Int32
    public let offset: UInt64
    private let release: (@Sendable () -> Void)?

    public init(descriptor: Int32, offset: UInt64, release: (@Sendable () -> Void)? = nil) {
        self.descriptor = descriptor
        self.offset = offset
        self.release = release
    }

    /// Lets the holder drop the bytes again. Call once, after the last read of the descriptor.
    public func end() { release?() }
}

/// A failure of a medium's backing. `sense` is what the guest sees (03/11/00 by default).
public struct MediumError: Error, Sendable, Equatable {
    /// One line for `status`' `last_error` and the log.
    public var reason: String
    /// The sense code reported to the initiator.
    public var sense: SenseCode

    public init(reason: String, sense: SenseCode = .unrecoveredReadError) {
        self.reason = reason
        self.sense = sense
    }
}

/// The MMC profile a medium is presented as (MMC-6 Table 91, Profile list).
public enum MediumProfile: UInt16, Sendable, CaseIterable {
    /// 0008h CD-ROM.
    case cdROM = 0x0008
    /// 0010h DVD-ROM.
    case dvdROM = 0x0010

    /// The largest CD: 80 minutes x 60 s x 75 sectors x 2048 bytes = 737,280,000 bytes.
    /// Anything larger is a DVD-ROM (the same rule QEMU's scsi-cd applies).
    public static let largestCD: UInt64 = 80 * 60 * 75 * 2048

    /// The profile for a medium of `byteCount` bytes.
    public static func forCapacity(_ byteCount: UInt64) -> MediumProfile {
        byteCount > largestCD ? .dvdROM : .cdROM
    }

    /// The Random Readable feature's Blocking value (MMC-6 5.3.5): 1 for CD, 16 for DVD.
    var blocking: UInt16 { self == .dvdROM ? 16 : 1 }
}

/// A loaded (or loadable) disc: a `BlockSource` with its size captured once.
///
/// The size is read from the source when the `Medium` is made and never again, so nothing that
/// happens to the backing later (or a failed READ) changes what READ CAPACITY reports.
public struct Medium: Sendable {
    /// The logical block size: 2048 bytes, as for every CD/DVD data track.
    public static let blockSize = 2048

    public let source: any BlockSource
    /// The medium's size in bytes, as it was when loaded.
    public let byteCount: UInt64
    /// Whole 2048-byte blocks: ceil(byteCount / 2048).
    public let blockCount: UInt64
    /// CD-ROM up to `MediumProfile.largestCD` bytes, else DVD-ROM (unless given explicitly).
    public let profile: MediumProfile

    public init(source: any BlockSource) {
        self.init(source: source, profile: nil)
    }

    /// - Parameter profile: force a profile; nil chooses by capacity.
    public init(source: any BlockSource, profile: MediumProfile?) {
        self.source = source
        let size = source.byteCount
        self.byteCount = size
        self.blockCount = size / 2048 + (size % 2048 == 0 ? 0 : 1)
        self.profile = profile ?? MediumProfile.forCapacity(size)
    }

    /// True when both media read from the same source object.
    public func hasSameSource(as other: Medium) -> Bool {
        source === other.source
    }
}

/// The bytes of a successful READ, not copied: the source, where, and how many.
///
/// `length` bytes at `offset` exist in the source; `zeroFill` zero bytes follow them (the short
/// last block of a medium whose size is not a multiple of 2048). A zero-copy caller splices
/// `length` bytes from a `source.lease` of them and appends `zeroFill` zeros.
public struct BlockRange: Sendable {
    public let source: any BlockSource
    /// Byte offset in the source.
    public let offset: UInt64
    /// Bytes that exist in the source.
    public let length: Int
    /// Zero bytes that follow.
    public let zeroFill: Int
    /// The drive's medium generation when the READ was served (see `DriveState.generation`):
    /// a handle opened at another generation must not use these bytes.
    public let generation: UInt64

    /// Total bytes the READ transfers.
    public var count: Int { length + zeroFill }

    public init(source: any BlockSource, offset: UInt64, length: Int, zeroFill: Int, generation: UInt64) {
        self.source = source
        self.offset = offset
        self.length = length
        self.zeroFill = zeroFill
        self.generation = generation
    }

    /// Materialises the range: copies `min(count, buffer.count)` bytes into `buffer`.
    /// Throws if the source fails or ends before `length` bytes (the backing shrank).
    public func copy(into buffer: UnsafeMutableRawBufferPointer) throws(MediumError) {
        let wanted = min(count, buffer.count)
        let fromSource = min(length, wanted)
        var done = 0
        while done < fromSource {
            let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<fromSource])
            let n = try source.read(into: slice, at: offset + UInt64(done))
            if n <= 0 {
                throw MediumError(reason: "medium ended \(fromSource - done) bytes early at offset \(offset + UInt64(done))")
            }
            done += n
        }
        if wanted > fromSource {
            UnsafeMutableRawBufferPointer(rebasing: buffer[fromSource..<wanted]).initializeMemory(as: UInt8.self, repeating: 0)
        }
    }

    /// The range's bytes as an array.
    public func bytes() throws(MediumError) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        var failure: MediumError?
        result.withUnsafeMutableBytes { raw in
            do throws(MediumError) { try copy(into: raw) } catch { failure = error }
        }
        if let failure { throw failure }
        return result
    }
}

/// The data-in of a command.
public enum ResponseData: Sendable {
    /// No data transferred.
    case none
    /// Data built by the emulator (already cut to the allocation length).
    case bytes([UInt8])
    /// A READ's data, left in the source for the caller to copy or splice.
    case blocks(BlockRange)

    /// Bytes this data transfers.
    public var count: Int {
        switch self {
        case .none: return 0
        case .bytes(let b): return b.count
        case .blocks(let r): return r.count
        }
    }
}
