import CSystemd
import Glibc

/// The sockets systemd passed to this process (socket activation, `sd_listen_fds(3)`).
public enum SocketActivation {
    /// The listening stream sockets passed (fd 3 upward); empty when not socket-activated.
    /// Unsets `$LISTEN_FDS`/`$LISTEN_PID` so children do not inherit them.
    public static func listeningStreamSockets() -> [Int32] {
        let count = sd_listen_fds(1)
        guard count > 0 else { return [] }
        return (0..<count).map { SD_LISTEN_FDS_START + $0 }.filter { sd_is_socket($0, 0, Int32(SOCK_STREAM.rawValue), 1) > 0 }
    }

    /// How many descriptors systemd passed, listening or not (without consuming the variables).
    public static func passedCount() -> Int { max(0, Int(sd_listen_fds(0))) }
}
