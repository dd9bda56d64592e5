/**
 * Imported first by each service's entry point (its cli.ts), before any
 * other module runs: keeps V8's young generation at its first size (two
 * 1 MiB semi-spaces) instead of letting it grow to 16 MiB each under a
 * download's allocation rate. A chunk's socket reads are ArrayBuffers that
 * die young; in the large young generation they piled up between
 * scavenges. A peer's peak RSS for 256 MiB went from 103-111 MiB to
 * 75-77 MiB, at no more CPU (the CPU job of `pnpm bench`; node's own
 * --max-semi-space-size=1 measured the same). V8 reads this flag each time
 * it considers growing the space, so setting it from inside the process
 * takes effect (Node 20, V8 11.3); set later, once the space has grown
 * during start-up, it saved only half as much.
 *
 * Only the services' entry points import it: a library caller's process
 * keeps its own settings.
 */
import { setFlagsFromString } from 'node:v8';

try {
  setFlagsFromString('--semi-space-growth-factor=1');
  // With a small young generation more short-lived objects reach the old
  // one, which then grew to 30 MiB of garbage between full collections in a
  // 1 GiB download (its live heap is 10 MiB): growing it by a fifth at a
  // time, not by V8's default factor of up to 4, kept the peak at 80 MiB.
  setFlagsFromString('--heap-growing-percent=20');
} catch {
  // Another engine, or a Node that refuses: only memory is at stake.
}
