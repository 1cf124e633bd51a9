import CMKIdentity
import Foundation
import HTTPTypes
import Hummingbird

/// The console's HTML: plain Swift string templates compiled into the binary (no resource lookup
/// at run time, no JavaScript but the copy button's same-origin script, no CDN). Every variable part
/// goes through ``escape(_:)``.
struct ConsolePage {
    /// Who is signed in (nil on the sign-in page), for the navigation.
    var role: Role?
    var csrf: String?
    var title: String
    var body: String

    /// Every console response carries these (docs/console.md, "Headers"). `script-src 'self'`
    /// lets the copy button's script (served from /console/static/copy.js) run; nothing inline.
    static let securityHeaders: HTTPFields = [
        HTTPField.Name("Content-Security-Policy")!:
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        HTTPField.Name("X-Frame-Options")!: "DENY",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        .cacheControl: "no-store",
    ]

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// A POST form to `action` with the session's CSRF token, `fields` (already HTML) and a submit button.
    static func form(_ action: String, csrf: String, fields: String = "", button: String, danger: Bool = false) -> String {
        """
        <form method="post" action="\(escape(action))"><input type="hidden" name="csrf" value="\(escape(csrf))">\(fields)\
        <button type="submit"\(danger ? " class=\"danger\"" : "")>\(escape(button))</button></form>
        """
    }

    /// A table with a caption; `rows` hold HTML cells.
    static func table(caption: String, headers: [String], rows: [[String]]) -> String {
        let head = headers.map { "<th scope=\"col\">\(escape($0))</th>" }.joined()
        let body = rows.isEmpty ? "<tr><td colspan=\"\(headers.count)\">None.</td></tr>"
            : rows.map { "<tr>" + $0.map { "<td>\($0)</td>" }.joined() + "</tr>" }.joined(separator: "\n")
        return "<table><caption>\(escape(caption))</caption><thead><tr>\(head)</tr></thead><tbody>\n\(body)\n</tbody></table>"
    }

    static func time(_ date: Date?) -> String {
        guard let date else { return "—" }
        return escape(GraphDate.string(date))
    }

    var html: String {
        var links: [(String, String)] = []
        switch role {
        case .administrator?: links = [("/console/credentials", "Service-principal keys"), ("/console/access", "Who has access"), ("/console/log", "Security log")]
        case .servicePrincipal?: links = [("/console/keys", "Keys"), ("/console/deleted-keys", "Deleted keys"), ("/console/log", "Security log")]
        default: break
        }
        var nav = ""
        if !links.isEmpty, let csrf {
            nav = "<nav aria-label=\"Console\"><ul>" + links.map { "<li><a href=\"\($0.0)\">\(Self.escape($0.1))</a></li>" }.joined()
                + "<li>" + Self.form("/console/sign-out", csrf: csrf, button: "Sign out") + "</li></ul></nav>"
        }
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(Self.escape(title)) — cmk-vault</title><link rel="stylesheet" href="/console/static/console.css"></head>
            <body><header><p class="brand">cmk-vault console</p>\(nav)</header>
            <main><h1>\(Self.escape(title))</h1>
            \(body)
            </main></body></html>
            """
    }

    func response(status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:]) -> Response {
        var headers = Self.securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// 303 See Other to `location` (after a POST), with the security headers.
    static func redirect(_ location: String, headers extra: HTTPFields = [:]) -> Response {
        var headers = securityHeaders
        headers[.location] = location
        headers.append(contentsOf: extra)
        return Response(status: .seeOther, headers: headers)
    }

    static func staticFile(_ text: String, type: String) -> Response {
        var headers = securityHeaders
        headers[.contentType] = type
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static let copyScript = """
        document.addEventListener("click", function (event) {
          var button = event.target.closest("button[data-copy]");
          if (!button) return;
          var field = document.getElementById(button.getAttribute("data-copy"));
          if (field && navigator.clipboard) navigator.clipboard.writeText(field.value);
          button.textContent = "Copied";
        });

        """

    static let stylesheet = """
        body { font-family: system-ui, sans-serif; margin: 0; color: #1a1a1a; background: #fff; line-height: 1.45; }
        header { background: #123; color: #fff; padding: .5rem 1rem; display: flex; flex-wrap: wrap; align-items: center; gap: 1rem; }
        header a, header button { color: #fff; }
        .brand { font-weight: bold; margin: 0; }
        nav ul { list-style: none; display: flex; gap: 1rem; margin: 0; padding: 0; align-items: center; }
        nav form { margin: 0; }
        nav button { background: none; border: 1px solid #fff; }
        main { padding: 1rem 2rem; max-width: 72rem; }
        table { border-collapse: collapse; margin: 1rem 0; }
        caption { text-align: left; font-weight: bold; padding: .25rem 0; }
        th, td { border: 1px solid #888; padding: .3rem .5rem; text-align: left; vertical-align: top; }
        form { display: inline-block; margin: .2rem .4rem .2rem 0; }
        label { display: block; margin: .3rem 0 .1rem; }
        form.policy { display: block; max-width: 44rem; }
        fieldset { border: 1px solid #888; margin: .6rem 0; padding: .3rem .8rem .6rem; }
        input[type=text], input[type=password], input[type=datetime-local] { padding: .25rem; border: 1px solid #555; min-width: 16rem; }
        input[aria-invalid=true] { border: 2px solid #8b0000; }
        button { padding: .3rem .8rem; border: 1px solid #123; background: #e8eef5; color: #123; cursor: pointer; }
        button.danger { background: #8b0000; color: #fff; border-color: #8b0000; }
        .warning { border: 2px solid #8b0000; background: #fff4f4; padding: .5rem 1rem; }
        .notice { border: 2px solid #1e5c1e; background: #f2fbf2; padding: .5rem 1rem; }
        .safe { color: #1e5c1e; font-weight: bold; }
        .inuse { color: #8b0000; font-weight: bold; }
        code, pre { font-family: ui-monospace, monospace; background: #f3f3f3; padding: .1rem .25rem; }
        pre { padding: .5rem; overflow-x: auto; }

        """
}
