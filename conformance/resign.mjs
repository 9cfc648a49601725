// The suite's token is signed with the HMAC secret printed in Mercure's
// documentation, which sse_mercure refuses to be configured with (anyone can
// sign tokens with it). This checks that the token is exactly that (HS256,
// signed with that secret, nothing else), then signs the same header and
// claims, byte for byte, with a fresh random secret. run.sh configures the
// hub with that secret and has Caddy swap the suite's token for this one as
// requests come in: the hub sees the suite's claims unchanged.
//
//   node resign.mjs <token>    prints "<secret> <token>"
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

const EXAMPLE_SECRET = "!ChangeThisMercureHubJWTSecretKey!";

const token = process.argv[2] ?? "";
const parts = token.split(".");
if (parts.length !== 3) {
  console.error("resign: not a compact JWS");
  process.exit(1);
}
const [h, p, sig] = parts;
const header = JSON.parse(Buffer.from(h, "base64url"));
if (header.alg !== "HS256") {
  console.error(`resign: the suite's token uses ${header.alg}, not HS256: update run.sh`);
  process.exit(1);
}
const sign = (key) => createHmac("sha256", key).update(`${h}.${p}`).digest();
const want = sign(EXAMPLE_SECRET);
const got = Buffer.from(sig, "base64url");
if (got.length !== want.length || !timingSafeEqual(got, want)) {
  console.error("resign: the suite's token is not signed with Mercure's example secret: update run.sh");
  process.exit(1);
}
const secret = randomBytes(32).toString("hex");
console.log(`${secret} ${h}.${p}.${sign(secret).toString("base64url")}`);
