// SPDX-License-Identifier: LGPL-3.0-or-later
package backendai;

import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;

/** What cells call as {@code display.html(...)}, {@code display.svg(...)}, {@code display.png(bytes)}. */
public final class Display {
    public static final Display INSTANCE = new Display();

    private Display() { }

    /** One bundle of MIME type to data (binary data base64-encoded already). */
    public void mime(Map<String, String> bundle) {
        Map<String, Object> data = new LinkedHashMap<>(bundle);
        if (!data.containsKey("text/plain")) data.put("text/plain", "<" + bundle.keySet().iterator().next() + " output>");
        Driver.display(data);
    }

    public void mime(String type, String data) { mime(Map.of(type, data)); }
    public void html(String html) { mime("text/html", html); }
    public void svg(String svg) { mime("image/svg+xml", svg); }
    public void markdown(String md) { mime("text/markdown", md); }
    public void png(byte[] png) { mime("image/png", Base64.getEncoder().encodeToString(png)); }
    public void jpeg(byte[] jpeg) { mime("image/jpeg", Base64.getEncoder().encodeToString(jpeg)); }

    @Override
    public String toString() { return "display: html(String), svg(String), png(byte[]), jpeg(byte[]), markdown(String), mime(type, data)"; }
}
