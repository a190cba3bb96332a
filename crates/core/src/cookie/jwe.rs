//! Compact JWE with `alg: dir`, as `jose` (and so Auth.js) writes it.
//!
//! Two content encryptions are supported: A256CBC-HS512 (RFC 7518 §5.2.5,
//! what Auth.js v5 writes) and A256GCM (what next-auth v4 writes, and what
//! Auth.js v5 still reads). Decoding is strict: exact segment count, canonical
//! unpadded base64url, exact IV and tag lengths, no compression, no critical
//! extensions, constant-time tag checks, bounded sizes.

use super::error::{CookieError, JwePart, KeyError};
use super::keys::{DerivedKey, HmacSha512, Kdf, check_secrets};
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit};
use aes_gcm::aead::AeadInPlace;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use rand::{CryptoRng, RngCore};
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::borrow::Cow;

/// The longest compact JWE accepted, in bytes (ten 4 KiB cookie chunks).
pub const MAX_TOKEN_LEN: usize = 10 * 4096;
/// The longest base64url protected header accepted.
const MAX_HEADER_LEN: usize = 1024;

const ENC_CBC: &str = "A256CBC-HS512";
const ENC_GCM: &str = "A256GCM";
const CBC_IV_LEN: usize = 16;
const CBC_TAG_LEN: usize = 32;
const GCM_IV_LEN: usize = 12;
const GCM_TAG_LEN: usize = 16;
const AES_BLOCK: usize = 16;

// Over a borrowed key schedule: the cached `Aes256` (~0.5 KB of round keys)
// is not copied per token.
type CbcEnc<'k> = cbc::Encryptor<&'k aes::Aes256>;
type CbcDec<'k> = cbc::Decryptor<&'k aes::Aes256>;

/// The content encryption of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enc {
    CbcHs512,
    Gcm,
}

/// Keys for one salt (one cookie name), ready to encrypt and decrypt.
#[derive(Clone)]
pub(crate) struct JweKeys {
    kdf: Kdf,
    /// Derived keys in configuration order; the first encrypts.
    keys: Vec<DerivedKey>,
    /// The protected header written on encode, already base64url-encoded.
    header_b64: String,
    /// Auth.js format: the first key's HMAC state after absorbing our own
    /// header (the AAD of every token we wrote), so decoding our tokens
    /// skips parsing the header and hashing it again.
    own_header_mac: Option<HmacSha512>,
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow)]
    enc: Cow<'a, str>,
    #[serde(default, borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(default)]
    zip: Option<IgnoredAny>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

impl JweKeys {
    /// Derives the keys of every secret for `salt`. Fails on an empty list or
    /// a short secret.
    pub(crate) fn new<S: AsRef<[u8]>>(
        kdf: Kdf,
        secrets: &[S],
        salt: &str,
    ) -> Result<Self, KeyError> {
        check_secrets(secrets)?;
        let keys: Vec<DerivedKey> = secrets
            .iter()
            .map(|s| DerivedKey::derive(kdf, s.as_ref(), salt))
            .collect();
        let header = match kdf {
            Kdf::AuthJs => format!(
                r#"{{"alg":"dir","enc":"{ENC_CBC}","kid":"{}"}}"#,
                keys[0].kid_cbc
            ),
            Kdf::NextAuthV4 => format!(r#"{{"alg":"dir","enc":"{ENC_GCM}"}}"#),
        };
        let header_b64 = URL_SAFE_NO_PAD.encode(header);
        let own_header_mac = (kdf == Kdf::AuthJs).then(|| {
            let mut mac = keys[0].cbc_mac.clone();
            mac.update(header_b64.as_bytes());
            mac
        });
        Ok(Self {
            kdf,
            header_b64,
            keys,
            own_header_mac,
        })
    }

    /// Encrypts `plaintext` with the first secret into a compact JWE.
    pub(crate) fn encrypt(&self, plaintext: &[u8], rng: &mut (impl RngCore + CryptoRng)) -> String {
        let aad = self.header_b64.as_bytes();
        let key = &self.keys[0];
        let (iv, ciphertext, tag) = match self.kdf {
            Kdf::AuthJs => {
                let mut iv = [0u8; CBC_IV_LEN];
                rng.fill_bytes(&mut iv);
                let ciphertext = CbcEnc::inner_iv_init(&key.cbc_cipher, (&iv).into())
                    .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
                let tag = cbc_mac(key, aad, &iv, &ciphertext).finalize().into_bytes();
                (iv.to_vec(), ciphertext, tag[..CBC_TAG_LEN].to_vec())
            }
            Kdf::NextAuthV4 => {
                let mut iv = [0u8; GCM_IV_LEN];
                rng.fill_bytes(&mut iv);
                let mut buf = plaintext.to_vec();
                // AES-GCM only fails for messages over 64 GiB; cookies are bounded far below.
                let tag = key
                    .gcm
                    .encrypt_in_place_detached((&iv).into(), aad, &mut buf)
                    .map(|t| t.to_vec())
                    .unwrap_or_default();
                (iv.to_vec(), buf, tag)
            }
        };
        let mut out = String::with_capacity(
            self.header_b64.len() + 4 + (iv.len() + ciphertext.len() + tag.len()) * 4 / 3 + 3,
        );
        out.push_str(&self.header_b64);
        out.push_str("..");
        URL_SAFE_NO_PAD.encode_string(&iv, &mut out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&ciphertext, &mut out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&tag, &mut out);
        out
    }

    /// Authenticates and decrypts a compact JWE, returning the plaintext.
    pub(crate) fn decrypt(&self, token: &str) -> Result<Vec<u8>, CookieError> {
        if token.is_empty() {
            return Err(CookieError::Empty);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(CookieError::Oversized {
                len: token.len(),
                max: MAX_TOKEN_LEN,
            });
        }
        // One pass over the token: up to five segments, and whether there is a sixth.
        let mut parts = [""; 5];
        let mut found = 0;
        for segment in token.split('.') {
            if let Some(slot) = parts.get_mut(found) {
                *slot = segment;
            }
            found += 1;
            if found > parts.len() {
                break;
            }
        }
        if found != 5 {
            return Err(CookieError::WrongSegmentCount { found });
        }
        let [header_b64, encrypted_key, iv_b64, ciphertext_b64, tag_b64] = parts;

        if let Some(mac) = &self.own_header_mac
            && header_b64 == self.header_b64
        {
            // Our own header: A256CBC-HS512 under the first secret's kid.
            if !encrypted_key.is_empty() {
                return Err(CookieError::UnexpectedEncryptedKey);
            }
            let (iv, tag, ciphertext) = cbc_parts(iv_b64, tag_b64, ciphertext_b64)?;
            return open_cbc_from(
                &self.keys[0],
                mac.clone(),
                header_b64.len(),
                &iv,
                ciphertext,
                &tag,
            )
            .ok_or(CookieError::Tampered);
        }
        if header_b64.len() > MAX_HEADER_LEN {
            return Err(CookieError::Oversized {
                len: header_b64.len(),
                max: MAX_HEADER_LEN,
            });
        }
        let mut header_buf = [0u8; MAX_HEADER_LEN * 3 / 4 + 3];
        let header_len = URL_SAFE_NO_PAD
            .decode_slice(header_b64, &mut header_buf)
            .map_err(|_| CookieError::BadBase64(JwePart::Header))?;
        let header_json = &header_buf[..header_len];
        let header: Header<'_> =
            serde_json::from_slice(header_json).map_err(|_| CookieError::BadHeader)?;
        if header.alg != "dir" {
            return Err(CookieError::UnsupportedAlg(truncated(&header.alg)));
        }
        if header.zip.is_some() {
            return Err(CookieError::UnsupportedHeaderParameter("zip"));
        }
        if header.crit.is_some() {
            return Err(CookieError::UnsupportedHeaderParameter("crit"));
        }
        let enc = match (&*header.enc, self.kdf) {
            (ENC_CBC, Kdf::AuthJs) => Enc::CbcHs512,
            (ENC_GCM, _) => Enc::Gcm,
            (other, _) => return Err(CookieError::UnsupportedEnc(truncated(other))),
        };
        if self.kdf == Kdf::NextAuthV4 && header.kid.is_some() {
            return Err(CookieError::UnsupportedHeaderParameter("kid"));
        }
        if !encrypted_key.is_empty() {
            return Err(CookieError::UnexpectedEncryptedKey);
        }
        let (iv_len, tag_len) = match enc {
            Enc::CbcHs512 => (CBC_IV_LEN, CBC_TAG_LEN),
            Enc::Gcm => (GCM_IV_LEN, GCM_TAG_LEN),
        };
        let mut iv_buf = [0u8; CBC_IV_LEN];
        let iv = fixed(iv_b64, &mut iv_buf[..iv_len], JwePart::Iv)?;
        let mut tag_buf = [0u8; CBC_TAG_LEN];
        let tag = fixed(tag_b64, &mut tag_buf[..tag_len], JwePart::Tag)?;
        let ciphertext = b64(ciphertext_b64, JwePart::Ciphertext)?;
        if enc == Enc::CbcHs512 && (ciphertext.is_empty() || ciphertext.len() % AES_BLOCK != 0) {
            return Err(CookieError::BadLength {
                part: JwePart::Ciphertext,
                len: ciphertext.len(),
                expected: AES_BLOCK,
            });
        }
        let aad = header_b64.as_bytes();
        let open = |key: &DerivedKey| match enc {
            Enc::CbcHs512 => open_cbc(key, aad, iv, ciphertext.clone(), tag),
            Enc::Gcm => open_gcm(key, aad, iv, ciphertext.clone(), tag),
        };

        match (self.kdf, header.kid) {
            (Kdf::AuthJs, Some(kid)) => {
                let key = self
                    .keys
                    .iter()
                    .find(|k| match enc {
                        Enc::CbcHs512 => k.kid_cbc == kid,
                        Enc::Gcm => k.kid_gcm == kid,
                    })
                    .ok_or(CookieError::UnknownKid)?;
                open(key).ok_or(CookieError::Tampered)
            }
            (Kdf::AuthJs, None) => open(&self.keys[0]).ok_or(CookieError::WrongKey),
            (Kdf::NextAuthV4, _) => self.keys.iter().find_map(open).ok_or(CookieError::WrongKey),
        }
    }
}

/// The decoded IV, tag and ciphertext of an A256CBC-HS512 token.
type CbcParts = ([u8; CBC_IV_LEN], [u8; CBC_TAG_LEN], Vec<u8>);

/// The IV, tag and ciphertext of an A256CBC-HS512 token, length-checked.
fn cbc_parts(iv_b64: &str, tag_b64: &str, ciphertext_b64: &str) -> Result<CbcParts, CookieError> {
    let mut iv = [0u8; CBC_IV_LEN];
    fixed(iv_b64, &mut iv, JwePart::Iv)?;
    let mut tag = [0u8; CBC_TAG_LEN];
    fixed(tag_b64, &mut tag, JwePart::Tag)?;
    let ciphertext = b64(ciphertext_b64, JwePart::Ciphertext)?;
    if ciphertext.is_empty() || ciphertext.len() % AES_BLOCK != 0 {
        return Err(CookieError::BadLength {
            part: JwePart::Ciphertext,
            len: ciphertext.len(),
            expected: AES_BLOCK,
        });
    }
    Ok((iv, tag, ciphertext))
}

/// The keyed HMAC over `aad || iv || ciphertext || AL` (RFC 7518 §5.2.2.1).
fn cbc_mac(key: &DerivedKey, aad: &[u8], iv: &[u8], ciphertext: &[u8]) -> HmacSha512 {
    let mut mac = key.cbc_mac.clone();
    mac.update(aad);
    cbc_mac_after_aad(mac, aad.len(), iv, ciphertext)
}

/// Continues a MAC that has absorbed the `aad_len`-byte AAD.
fn cbc_mac_after_aad(
    mut mac: HmacSha512,
    aad_len: usize,
    iv: &[u8],
    ciphertext: &[u8],
) -> HmacSha512 {
    mac.update(iv);
    mac.update(ciphertext);
    let aad_bits = (aad_len as u64).saturating_mul(8);
    mac.update(&aad_bits.to_be_bytes());
    mac
}

/// Authenticates then decrypts in place; the buffer becomes the plaintext.
fn open_cbc(key: &DerivedKey, aad: &[u8], iv: &[u8], buf: Vec<u8>, tag: &[u8]) -> Option<Vec<u8>> {
    let mut mac = key.cbc_mac.clone();
    mac.update(aad);
    open_cbc_from(key, mac, aad.len(), iv, buf, tag)
}

/// [`open_cbc`] from a MAC state that has already absorbed the AAD.
fn open_cbc_from(
    key: &DerivedKey,
    mac_after_aad: HmacSha512,
    aad_len: usize,
    iv: &[u8],
    mut buf: Vec<u8>,
    tag: &[u8],
) -> Option<Vec<u8>> {
    // `verify_truncated_left` compares in constant time; the tag length was checked.
    cbc_mac_after_aad(mac_after_aad, aad_len, iv, &buf)
        .verify_truncated_left(tag)
        .ok()?;
    let iv: &[u8; CBC_IV_LEN] = iv.try_into().ok()?;
    let len = CbcDec::inner_iv_init(&key.cbc_cipher, iv.into())
        .decrypt_padded_mut::<Pkcs7>(&mut buf)
        .ok()?
        .len();
    buf.truncate(len);
    Some(buf)
}

/// Authenticates and decrypts in place; the buffer becomes the plaintext.
fn open_gcm(
    key: &DerivedKey,
    aad: &[u8],
    iv: &[u8],
    mut buf: Vec<u8>,
    tag: &[u8],
) -> Option<Vec<u8>> {
    let iv: &[u8; GCM_IV_LEN] = iv.try_into().ok()?;
    let tag: &[u8; GCM_TAG_LEN] = tag.try_into().ok()?;
    key.gcm
        .decrypt_in_place_detached(iv.into(), aad, &mut buf, tag.into())
        .ok()?;
    Some(buf)
}

fn b64(segment: &str, part: JwePart) -> Result<Vec<u8>, CookieError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| CookieError::BadBase64(part))
}

/// Decodes a segment that must be exactly `out.len()` bytes into `out`.
fn fixed<'o>(segment: &str, out: &'o mut [u8], part: JwePart) -> Result<&'o [u8], CookieError> {
    let expected = out.len();
    match URL_SAFE_NO_PAD.decode_slice(segment, out) {
        Ok(len) if len == expected => Ok(out),
        // Too short, too long or not base64: decode again to say which.
        _ => {
            let len = b64(segment, part)?.len();
            Err(CookieError::BadLength {
                part,
                len,
                expected,
            })
        }
    }
}

/// An attacker-chosen header value, cut short so errors stay small.
fn truncated(s: &str) -> String {
    s.chars().take(32).collect()
}

#[cfg(test)]
impl JweKeys {
    /// Encrypts `plaintext` under an arbitrary protected header with the
    /// key at `index`, for building hostile tokens in tests.
    pub(crate) fn encrypt_raw(
        &self,
        index: usize,
        header_json: &str,
        gcm: bool,
        plaintext: &[u8],
    ) -> String {
        let header_b64 = URL_SAFE_NO_PAD.encode(header_json);
        let aad = header_b64.as_bytes();
        let key = &self.keys[index];
        let (iv, ciphertext, tag) = if gcm {
            let iv = [7u8; GCM_IV_LEN];
            let mut buf = plaintext.to_vec();
            let tag = key
                .gcm
                .encrypt_in_place_detached((&iv).into(), aad, &mut buf)
                .unwrap();
            (iv.to_vec(), buf, tag.to_vec())
        } else {
            let iv = [7u8; CBC_IV_LEN];
            let ct = CbcEnc::inner_iv_init(&key.cbc_cipher, (&iv).into())
                .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
            let tag = cbc_mac(key, aad, &iv, &ct).finalize().into_bytes();
            (iv.to_vec(), ct, tag[..CBC_TAG_LEN].to_vec())
        };
        [
            header_b64,
            String::new(),
            URL_SAFE_NO_PAD.encode(iv),
            URL_SAFE_NO_PAD.encode(ciphertext),
            URL_SAFE_NO_PAD.encode(tag),
        ]
        .join(".")
    }

    /// The `kid` of the key at `index` for A256CBC-HS512 and A256GCM.
    pub(crate) fn kids(&self, index: usize) -> (String, String) {
        (
            self.keys[index].kid_cbc.clone(),
            self.keys[index].kid_gcm.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::KeyInit;

    /// RFC 7518 Appendix B.3: AES_256_CBC_HMAC_SHA_512 test case.
    #[test]
    fn a256cbc_hs512_matches_rfc7518_appendix_b3() {
        let k: Vec<u8> = (0u8..64).collect();
        let p = hex_bytes(
            "41206369706865722073797374656d206d757374206e6f742062652072657175\
             6972656420746f206265207365637265742c20616e64206974206d7573742062\
             652061626c6520746f2066616c6c20696e746f207468652068616e6473206f66\
             2074686520656e656d7920776974686f757420696e636f6e76656e69656e6365",
        );
        let iv = hex_bytes("1af38c2dc2b96ffdd86694092341bc04");
        let a = hex_bytes(
            "546865207365636f6e64207072696e6369706c65206f66204175677573746520\
             4b6572636b686f666673",
        );
        let expected_e = hex_bytes(
            "4affaaadb78c31c5da4b1b590d10ffbd3dd8d5d302423526912da037ecbcc7bd\
             822c301dd67c373bccb584ad3e9279c2e6d12a1374b77f077553df829410446b\
             36ebd97066296ae6427ea75c2e0846a11a09ccf5370dc80bfecbad28c73f09b3\
             a3b75e662a2594410ae496b2e2e6609e31e6e02cc837f053d21f37ff4f51950b\
             be2638d09dd7a4930930806d0703b1f6",
        );
        let expected_t =
            hex_bytes("4dd3b4c088a7f45c216839645b2012bf2e6269a8c56a816dbc1b267761955bc5");
        let key = DerivedKey {
            kid_cbc: String::new(),
            kid_gcm: String::new(),
            cbc_mac: super::super::keys::keyed_hmac(&k[..32]),
            cbc_cipher: aes::Aes256::new(k[32..].into()),
            gcm: aes_gcm::Aes256Gcm::new(k[..32].into()),
        };
        let iv16: &[u8; 16] = iv.as_slice().try_into().unwrap();
        let e =
            CbcEnc::inner_iv_init(&key.cbc_cipher, iv16.into()).encrypt_padded_vec_mut::<Pkcs7>(&p);
        assert_eq!(e, expected_e);
        let t = cbc_mac(&key, &a, &iv, &e).finalize().into_bytes();
        assert_eq!(&t[..32], expected_t.as_slice());
        assert_eq!(open_cbc(&key, &a, &iv, e, &expected_t), Some(p));
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
