/// Why a disc, or one node of it, cannot be read.
///
/// Every error carries a one-line, human-readable `reason` (shown as is in `status`/logs) and a
/// `code` the caller can map to an errno. Errors thrown by the caller's own `SectorReader` are
/// passed through unchanged, never wrapped in a `DiscFormatError`.
public struct DiscFormatError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The family of a failure, for mapping to an errno at the FUSE edge.
    public enum Code: Sendable, Equatable {
        /// No known file system on the disc (neither ISO 9660 nor UDF).
        case notRecognized
        /// A structure on the disc is damaged or inconsistent.
        case corrupt
        /// A valid feature this reader does not handle (interleaved files, UDF virtual partitions...).
        case unsupported
        /// A `NodeID` this volume never handed out.
        case noSuchNode
        /// A directory operation on a non-directory.
        case notDirectory
        /// A data range outside the disc.
        case outOfRange
        /// A hard safety limit of `OpenOptions` was reached where a truncated view would be wrong,
        /// e.g. a directory nested deeper than `OpenOptions.maxDepth`. Maps to `EIO`.
        case limitExceeded
    }

    /// The family of the failure.
    public var code: Code
    /// One line saying what is wrong, without a trailing period.
    public var reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { reason }

    static func corrupt(_ reason: String) -> DiscFormatError { .init(.corrupt, reason) }
    static func unsupported(_ reason: String) -> DiscFormatError { .init(.unsupported, reason) }
}
