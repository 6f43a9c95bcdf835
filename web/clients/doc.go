// Package clients judges hlsd as clients other than browsers see it: every
// URI each master of the test media lists, cold, decoded by ffmpeg, and
// mpv and VLC playing and seeking. Its tests run beside the other
// packages' in `make test` (they judge no timing), not in web/e2e's
// browser phase, where a player on two cores must have the CPU to itself.
// They run side by side too: VLC plays in real time and mpv waits on its
// reads, which leaves the cores to the walk's encoders.
package clients
