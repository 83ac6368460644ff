// SPDX-License-Identifier: LGPL-3.0-or-later
package backendai;

/** A read of System.in the frontend refused (no stdin, an interrupt): the cell fails with the frontend's reason. */
public final class StdinError extends RuntimeException {
    public final String ename;

    public StdinError(String ename, String message) {
        super(message);
        this.ename = ename;
    }
}
