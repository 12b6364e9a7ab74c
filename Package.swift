// swift-tools-version:6.0
import PackageDescription

// One direction of imports (see docs/architecture.md):
//   vmediafs  ->  VMediaFS  ->  FuseKernel -> CFuse3, CFuseABI
//             |             ->  VirtualMedia -> SCSI, CSQLite, CPosixShims
//             |             ->  ISO9660, SCSI
//             ->  ISCSI -> SCSI, swift-nio
//             ->  RemoteMedia -> VirtualMedia, SCSI, async-http-client
//             ->  Redfish -> VirtualMedia, hummingbird, swift-crypto
//   vmedia    ->  VMediaCLI (the mounted tree's files only), swift-argument-parser
// SCSI and ISO9660 do no I/O of their own; only FuseKernel sees libfuse; only the store sees SQLite.
// Every target names each module it imports.
let package = Package(
    name: "vmediafs",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vmediafs", targets: ["vmediafs"]),
        .executable(name: "vmedia", targets: ["vmedia"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
    ],
    targets: [
        .systemLibrary(name: "CFuse3", pkgConfig: "fuse3",
                       providers: [.apt(["libfuse3-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "CPosixShims"),
        // The FUSE kernel protocol's structures (<linux/fuse.h>) and the ioctls Swift cannot expand.
        .target(name: "CFuseABI"),
        .target(name: "FuseKernel", dependencies: ["CFuse3", "CFuseABI"]),
        .target(name: "SCSI"),
        .target(name: "ISO9660"),
        // The iSCSI target: guests reach their drives' emulators over the network.
        .target(name: "ISCSI", dependencies: [
            "SCSI", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .target(name: "VirtualMedia", dependencies: ["SCSI", "CSQLite", "CPosixShims"]),
        .target(name: "VMediaFS", dependencies: ["FuseKernel", "VirtualMedia", "SCSI", "ISO9660"]),
        // Media from http(s) URLs: range requests, a block cache on disk, readahead.
        .target(name: "RemoteMedia", dependencies: [
            "VirtualMedia", "SCSI", "CPosixShims", .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // The daemon: options, start-up, the mount's session and the iSCSI target's wiring.
        .executableTarget(name: "vmediafs", dependencies: ["VMediaFS", "FuseKernel", "VirtualMedia", "SCSI", "ISCSI", "RemoteMedia", "Redfish",
                                                     .product(name: "NIOSSL", package: "swift-nio-ssl")]),
        // The administrator's command line: works only through the mounted tree's files.
        .target(name: "VMediaCLI"),
        .executableTarget(name: "vmedia", dependencies: [
            "VMediaCLI", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "SCSITests", dependencies: ["SCSI", "TestSupport"]),
        .testTarget(name: "ISO9660Tests", dependencies: ["ISO9660", "TestSupport", "TestImages"]),
        // Hostile and oversized disc images written byte by byte (ISO 9660 records, Rock Ridge
        // entries, whole UDF file systems) for the reader's tests and the mount's.
        .target(name: "TestImages", path: "Tests/TestImages"),
        // Serves one ISO over iSCSI without the filesystem: for real initiators and benchmarks.
        .executableTarget(name: "iscsi-demo", dependencies: ["ISCSI", "SCSI"]),
        // What several test targets share: a minimal iSCSI initiator that tests drive by hand
        // (login, PREVENT, START STOP, ...) and a seeded random generator.
        .target(name: "TestSupport", dependencies: ["ISCSI", .product(name: "NIOCore", package: "swift-nio")],
                path: "Tests/TestSupport"),
        .testTarget(name: "ISCSITests", dependencies: [
            "ISCSI", "SCSI", "TestSupport", "iscsi-demo",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "VirtualMediaTests", dependencies: ["VirtualMedia", "SCSI"]),
        .testTarget(name: "FuseKernelTests", dependencies: ["FuseKernel", "CFuse3", "CFuseABI"]),
        // A DMTF Redfish VirtualMedia service over the same host: Hummingbird 2 on swift-nio.
        .target(name: "Redfish", dependencies: [
            "VirtualMedia", .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"), .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "X509", package: "swift-certificates"), .product(name: "SwiftASN1", package: "swift-asn1"),
        ]),
        .testTarget(name: "RedfishTests", dependencies: ["Redfish", "VirtualMedia"]),
        .testTarget(name: "RemoteMediaTests", dependencies: ["RemoteMedia", "VirtualMedia", "SCSI"]),
        .testTarget(name: "VMediaFSTests", dependencies: ["VMediaFS", "VirtualMedia", "SCSI"]),
        .testTarget(name: "DaemonTests", dependencies: ["vmediafs", "VMediaFS", "VirtualMedia"]),
        .testTarget(name: "VMediaCLITests", dependencies: ["VMediaCLI", "vmedia"]),
        .testTarget(name: "MountTests", dependencies: ["vmediafs", "vmedia", "TestSupport", "TestImages"]),
    ]
)
