// Dominant frequency of decoded PCM, computed in the page: a Hann-windowed
// radix-2 FFT over the most recent samples. Pure JS, no dependency.

export function dominantFrequency(samples, sampleRate) {
  let n = 1;
  while (n * 2 <= samples.length) n *= 2;
  if (n < 1024) return 0;
  const re = new Float64Array(n);
  const im = new Float64Array(n);
  const offset = samples.length - n;
  for (let i = 0; i < n; i++) {
    re[i] = samples[offset + i] * (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1)));
  }
  for (let i = 1, j = 0; i < n; i++) {            // bit-reversal permutation
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) { [re[i], re[j]] = [re[j], re[i]]; }
  }
  for (let size = 2; size <= n; size *= 2) {      // butterflies
    const angle = (-2 * Math.PI) / size;
    for (let start = 0; start < n; start += size) {
      for (let k = 0; k < size / 2; k++) {
        const wr = Math.cos(angle * k), wi = Math.sin(angle * k);
        const a = start + k, b = a + size / 2;
        const tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr;
        re[b] = re[a] - tr; im[b] = im[a] - ti;
        re[a] += tr; im[a] += ti;
      }
    }
  }
  let best = 1, bestPower = 0;
  for (let i = 1; i < n / 2; i++) {
    const power = re[i] * re[i] + im[i] * im[i];
    if (power > bestPower) { bestPower = power; best = i; }
  }
  return (best * sampleRate) / n;
}

// The Opus packets inside one Ogg page (RFC 3533 lacing), header packets excluded.
export function oggPackets(bytes) {
  if (bytes.length < 27 || bytes[0] !== 0x4f || bytes[1] !== 0x67 || bytes[2] !== 0x67 || bytes[3] !== 0x53) {
    return null;
  }
  const segments = bytes[26];
  let pos = 27 + segments;
  const packets = [];
  let current = 0;
  let start = pos;
  for (let i = 0; i < segments; i++) {
    const lace = bytes[27 + i];
    current += lace;
    if (lace < 255) {
      packets.push(bytes.subarray(start, start + current));
      start += current;
      current = 0;
    }
  }
  const text = (p) => String.fromCharCode(...p.subarray(0, 8));
  return packets.filter((p) => p.length && text(p) !== "OpusHead" && text(p) !== "OpusTags");
}
