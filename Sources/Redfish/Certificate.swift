import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import VirtualMedia
import X509

/// The certificate the Redfish service uses when none is given: a self-signed P-256
/// certificate made once and kept beside the state database (`redfish.crt`, `redfish.key`,
/// 0600), so that clients that pinned its fingerprint keep trusting it across restarts.
public enum SelfSignedCertificate {
    /// The TLS configuration, the SHA-256 fingerprint of the certificate (hex pairs with
    /// colons, as `openssl x509 -fingerprint -sha256` prints it) and whether it was made now.
    public static func loadOrCreate(in directory: String, address: String) throws(VMError)
        -> (tls: TLSConfiguration, fingerprint: String, created: Bool) {
        let certPath = directory + "/redfish.crt", keyPath = directory + "/redfish.key"
        var created = false
        do {
            if !FileManager.default.fileExists(atPath: certPath) || !FileManager.default.fileExists(atPath: keyPath) {
                try make(certPath: certPath, keyPath: keyPath, address: address)
                created = true
            }
            _ = try PrivateFile.read(keyPath, what: "Redfish key")
            let chain = try NIOSSLCertificate.fromPEMFile(certPath)
            guard let first = chain.first else { throw VMError(EINVAL, "\(certPath) holds no certificate") }
            let der = try first.toDERBytes()
            let fingerprint = SHA256.hash(data: der).map { String(format: "%02X", $0) }.joined(separator: ":")
            let tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                               privateKey: .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem)))
            return (tls, fingerprint, created)
        } catch let error as VMError {
            throw error
        } catch {
            throw VMError(EIO, "the Redfish certificate in \(directory): \(error)")
        }
    }

    private static func make(certPath: String, keyPath: String, address: String) throws {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("vmediafs Redfish service") }
        var alternatives: [GeneralName] = [.dnsName("localhost")]
        var ip = in_addr()
        if inet_pton(AF_INET, address, &ip) == 1, address != "0.0.0.0" {
            alternatives.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(withUnsafeBytes(of: ip) { Array($0) }))))
        }
        alternatives.append(.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])))
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            SubjectAlternativeNames(alternatives)
        }
        let now = Date()
        let certificate = try Certificate(version: .v3, serialNumber: Certificate.SerialNumber(),
                                          publicKey: .init(key.publicKey), notValidBefore: now.addingTimeInterval(-3600),
                                          notValidAfter: now.addingTimeInterval(10 * 365 * 86400), issuer: name, subject: name,
                                          signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions, issuerPrivateKey: .init(key))
        let keyFD = open(keyPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard keyFD >= 0 else { throw VMError.system(errno, "cannot create \(keyPath)") }
        let keyText = Array(key.pemRepresentation.utf8)
        let wrote = write(keyFD, keyText, keyText.count)
        close(keyFD)
        guard wrote == keyText.count else { throw VMError(EIO, "cannot write \(keyPath)") }
        try (try certificate.serializeAsPEM().pemString + "\n").write(toFile: certPath, atomically: true, encoding: .utf8)
    }
}
