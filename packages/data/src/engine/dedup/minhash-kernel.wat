;; MinHash kernel: xxHash64 of every word n-gram of a " "-joined UTF-8 word list, then the
;; 64-bit permutations (h * a + b) mod 2^64 mod (2^61 - 1) and their minima, in native i64
;; arithmetic (JavaScript has no 64-bit integer multiply but BigInt, which allocates).
;; Assembled into minhash-kernel-wasm.ts by gen-minhash-kernel.mjs (wabt's wat2wasm).
(module
  (memory (export "memory") 1)

  (func $round (param $acc i64) (param $input i64) (result i64)
    (i64.mul
      (i64.rotl (i64.add (local.get $acc) (i64.mul (local.get $input) (i64.const 0xC2B2AE3D27D4EB4F))) (i64.const 31))
      (i64.const 0x9E3779B185EBCA87)))

  (func $merge (param $h i64) (param $v i64) (result i64)
    (i64.add
      (i64.mul (i64.xor (local.get $h) (call $round (i64.const 0) (local.get $v))) (i64.const 0x9E3779B185EBCA87))
      (i64.const 0x85EBCA77C2B2AE63)))

  ;; XXH64(bytes [p, p + len), seed 0)
  (func $xxh64 (param $p i32) (param $len i32) (result i64)
    (local $end i32) (local $limit i32) (local $h i64)
    (local $v1 i64) (local $v2 i64) (local $v3 i64) (local $v4 i64)
    (local.set $end (i32.add (local.get $p) (local.get $len)))
    (if (i32.ge_u (local.get $len) (i32.const 32))
      (then
        (local.set $limit (i32.sub (local.get $end) (i32.const 32)))
        (local.set $v1 (i64.const 0x60EA27EEADC0B5D6)) ;; P1 + P2 mod 2^64
        (local.set $v2 (i64.const 0xC2B2AE3D27D4EB4F))
        (local.set $v3 (i64.const 0))
        (local.set $v4 (i64.const 0x61C8864E7A143579)) ;; -P1 mod 2^64
        (loop $stripes
          (local.set $v1 (call $round (local.get $v1) (i64.load (local.get $p))))
          (local.set $v2 (call $round (local.get $v2) (i64.load offset=8 (local.get $p))))
          (local.set $v3 (call $round (local.get $v3) (i64.load offset=16 (local.get $p))))
          (local.set $v4 (call $round (local.get $v4) (i64.load offset=24 (local.get $p))))
          (local.set $p (i32.add (local.get $p) (i32.const 32)))
          (br_if $stripes (i32.le_u (local.get $p) (local.get $limit))))
        (local.set $h
          (i64.add
            (i64.add (i64.rotl (local.get $v1) (i64.const 1)) (i64.rotl (local.get $v2) (i64.const 7)))
            (i64.add (i64.rotl (local.get $v3) (i64.const 12)) (i64.rotl (local.get $v4) (i64.const 18)))))
        (local.set $h (call $merge (local.get $h) (local.get $v1)))
        (local.set $h (call $merge (local.get $h) (local.get $v2)))
        (local.set $h (call $merge (local.get $h) (local.get $v3)))
        (local.set $h (call $merge (local.get $h) (local.get $v4))))
      (else
        (local.set $h (i64.const 0x27D4EB2F165667C5))))
    (local.set $h (i64.add (local.get $h) (i64.extend_i32_u (local.get $len))))
    (block $done8
      (loop $eights
        (br_if $done8 (i32.gt_u (i32.add (local.get $p) (i32.const 8)) (local.get $end)))
        (local.set $h (i64.xor (local.get $h) (call $round (i64.const 0) (i64.load (local.get $p)))))
        (local.set $h
          (i64.add (i64.mul (i64.rotl (local.get $h) (i64.const 27)) (i64.const 0x9E3779B185EBCA87)) (i64.const 0x85EBCA77C2B2AE63)))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (br $eights)))
    (if (i32.le_u (i32.add (local.get $p) (i32.const 4)) (local.get $end))
      (then
        (local.set $h (i64.xor (local.get $h) (i64.mul (i64.load32_u (local.get $p)) (i64.const 0x9E3779B185EBCA87))))
        (local.set $h
          (i64.add (i64.mul (i64.rotl (local.get $h) (i64.const 23)) (i64.const 0xC2B2AE3D27D4EB4F)) (i64.const 0x165667B19E3779F9)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))))
    (block $done1
      (loop $ones
        (br_if $done1 (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $h (i64.xor (local.get $h) (i64.mul (i64.load8_u (local.get $p)) (i64.const 0x27D4EB2F165667C5))))
        (local.set $h (i64.mul (i64.rotl (local.get $h) (i64.const 11)) (i64.const 0x9E3779B185EBCA87)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $ones)))
    (local.set $h (i64.mul (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 33))) (i64.const 0xC2B2AE3D27D4EB4F)))
    (local.set $h (i64.mul (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 29))) (i64.const 0x165667B19E3779F9)))
    (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 32))))

  ;; Hash every n-gram of the `words` words in [bytes, bytes + len), separated by single 0x20
  ;; bytes (a word holds no 0x20). `starts` is scratch for words + 1 i32; the count of n-grams
  ;; (words - n + 1) i64 hashes go to `out`.
  (func (export "shingles") (param $bytes i32) (param $len i32) (param $words i32) (param $n i32) (param $starts i32) (param $out i32)
    (local $i i32) (local $w i32) (local $count i32) (local $s i32)
    (i32.store (local.get $starts) (local.get $bytes))
    (local.set $w (i32.const 1))
    (block $scanned
      (loop $scan
        (br_if $scanned (i32.ge_u (local.get $i) (local.get $len)))
        (if (i32.eq (i32.load8_u (i32.add (local.get $bytes) (local.get $i))) (i32.const 0x20))
          (then
            (i32.store (i32.add (local.get $starts) (i32.shl (local.get $w) (i32.const 2))) (i32.add (i32.add (local.get $bytes) (local.get $i)) (i32.const 1)))
            (local.set $w (i32.add (local.get $w) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    ;; sentinel: one past the end, as if a separator followed the last word
    (i32.store (i32.add (local.get $starts) (i32.shl (local.get $words) (i32.const 2))) (i32.add (i32.add (local.get $bytes) (local.get $len)) (i32.const 1)))
    (local.set $count (i32.add (i32.sub (local.get $words) (local.get $n)) (i32.const 1)))
    (local.set $i (i32.const 0))
    (block $hashed
      (loop $hash
        (br_if $hashed (i32.ge_s (local.get $i) (local.get $count)))
        (local.set $s (i32.load (i32.add (local.get $starts) (i32.shl (local.get $i) (i32.const 2)))))
        (i64.store
          (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 3)))
          (call $xxh64
            (local.get $s)
            (i32.sub
              (i32.sub (i32.load (i32.add (local.get $starts) (i32.shl (i32.add (local.get $i) (local.get $n)) (i32.const 2)))) (i32.const 1))
              (local.get $s))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $hash))))

  ;; For k < hashes: out[k] = min over the `count` (>= 1) i64 shingle hashes at `sh` of
  ;; ((h * a_k + b_k) mod 2^64) mod (2^61 - 1), with (a_k, b_k) as i64 pairs at `ab`; each
  ;; minimum is stored as two i32, high word first.
  (func (export "minhash") (param $sh i32) (param $count i32) (param $ab i32) (param $hashes i32) (param $out i32)
    (local $k i32) (local $p i32) (local $end i32) (local $a i64) (local $b i64) (local $v i64) (local $min i64) (local $o i32)
    (local.set $end (i32.add (local.get $sh) (i32.shl (local.get $count) (i32.const 3))))
    (block $doneK
      (loop $perm
        (br_if $doneK (i32.ge_u (local.get $k) (local.get $hashes)))
        (local.set $a (i64.load (i32.add (local.get $ab) (i32.shl (local.get $k) (i32.const 4)))))
        (local.set $b (i64.load offset=8 (i32.add (local.get $ab) (i32.shl (local.get $k) (i32.const 4)))))
        (local.set $min (i64.const -1))
        (local.set $p (local.get $sh))
        (loop $each
          (local.set $v (i64.add (i64.mul (i64.load (local.get $p)) (local.get $a)) (local.get $b)))
          ;; 2^61 = 1 mod (2^61 - 1): fold the top 3 bits onto the rest, then at most one subtraction
          (local.set $v (i64.add (i64.and (local.get $v) (i64.const 0x1FFFFFFFFFFFFFFF)) (i64.shr_u (local.get $v) (i64.const 61))))
          (if (i64.ge_u (local.get $v) (i64.const 0x1FFFFFFFFFFFFFFF))
            (then (local.set $v (i64.sub (local.get $v) (i64.const 0x1FFFFFFFFFFFFFFF)))))
          (if (i64.lt_u (local.get $v) (local.get $min)) (then (local.set $min (local.get $v))))
          (local.set $p (i32.add (local.get $p) (i32.const 8)))
          (br_if $each (i32.lt_u (local.get $p) (local.get $end))))
        (local.set $o (i32.add (local.get $out) (i32.shl (local.get $k) (i32.const 3))))
        (i32.store (local.get $o) (i32.wrap_i64 (i64.shr_u (local.get $min) (i64.const 32))))
        (i32.store offset=4 (local.get $o) (i32.wrap_i64 (local.get $min)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $perm))))
)
