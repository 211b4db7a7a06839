//! A JSON number's text -> Postgres's numeric varlena, as `numeric_in` makes it, for jsonb values
//! built off the backend thread (`convert::jsonb`).

/// Exponents beyond this go to `jsonb_in`: every supported version reads these the same way.
const MAX_EXPONENT: i64 = 300;
/// Numbers with more digits go to `jsonb_in`.
const MAX_DIGITS: usize = 1000;

/// Appends the numeric varlena (4-byte header) for a JSON number's text, as `numeric_in`
/// makes it: base-10000 digits without leading or trailing zero groups, the display scale of
/// the text, the short header where scale and weight allow it. `groups` is working memory.
pub(super) fn numeric(text: &str, out: &mut Vec<u8>, groups: &mut Vec<i16>) -> Option<()> {
    const NUMERIC_NEG: u16 = 0x4000;
    const NUMERIC_SHORT: u16 = 0x8000;
    const NUMERIC_SHORT_SIGN_MASK: u16 = 0x2000;
    const NUMERIC_SHORT_DSCALE_SHIFT: u16 = 7;
    const NUMERIC_SHORT_WEIGHT_SIGN_MASK: u16 = 0x0040;
    const NUMERIC_SHORT_WEIGHT_MASK: u16 = 0x003F;

    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().ok().filter(|e| e.abs() <= MAX_EXPONENT)?),
        None => (rest, 0),
    };
    let (int_part, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.len() + frac.len() > MAX_DIGITS {
        return None;
    }
    let dscale = (frac.len() as i64 - exponent).max(0) as u16;
    // Each digit's power of ten: the last one's is `exponent - frac.len()`. A digit of power
    // p goes to the base-10000 group p div 4, times 10^(p mod 4).
    let digits = int_part.bytes().chain(frac.bytes()).map(|b| (b - b'0') as i16);
    let n = int_part.len() + frac.len();
    let last_power = exponent - frac.len() as i64;
    let top = last_power + n as i64 - 1;
    let (top_group, low_group) = (top.div_euclid(4), last_power.div_euclid(4));
    groups.clear();
    groups.resize((top_group - low_group + 1) as usize, 0);
    for (i, d) in digits.enumerate() {
        let power = top - i as i64;
        let slot = (top_group - power.div_euclid(4)) as usize;
        groups[slot] += d * [1, 10, 100, 1000][power.rem_euclid(4) as usize];
    }
    // Without leading and trailing zero groups; the first group left has weight `weight`.
    let leading = groups.iter().take_while(|g| **g == 0).count();
    let trailing = groups[leading..].iter().rev().take_while(|g| **g == 0).count();
    let kept = &groups[leading..groups.len() - trailing];
    let weight = if kept.is_empty() { 0 } else { top_group - leading as i64 };
    let negative = negative && !kept.is_empty();
    let short = dscale <= 63 && (-64..=63).contains(&weight);
    let len = 4 + if short { 2 } else { 4 } + 2 * kept.len();
    out.extend_from_slice(&super::varlena::header(len)?);
    if short {
        let sign = if negative { NUMERIC_SHORT | NUMERIC_SHORT_SIGN_MASK } else { NUMERIC_SHORT };
        let weight_bits = if weight < 0 { NUMERIC_SHORT_WEIGHT_SIGN_MASK } else { 0 } | (weight as u16 & NUMERIC_SHORT_WEIGHT_MASK);
        out.extend_from_slice(&(sign | (dscale << NUMERIC_SHORT_DSCALE_SHIFT) | weight_bits).to_ne_bytes());
    } else {
        let sign = if negative { NUMERIC_NEG } else { 0 };
        out.extend_from_slice(&(sign | (dscale & 0x3FFF)).to_ne_bytes());
        out.extend_from_slice(&i16::try_from(weight).ok()?.to_ne_bytes());
    }
    for g in kept {
        out.extend_from_slice(&g.to_ne_bytes());
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        numeric(text, &mut out, &mut Vec::new()).expect(text);
        out
    }

    #[test]
    fn numerics_are_base_10000_with_the_text_s_scale() {
        // 12345.678: weight 1, digits 1 2345 6780, dscale 3, short header.
        let n = numeric_bytes("12345.678");
        assert_eq!(&n[4..6], &(0x8000u16 | (3 << 7) | 1).to_ne_bytes());
        let digits: Vec<i16> = n[6..].chunks(2).map(|c| i16::from_ne_bytes([c[0], c[1]])).collect();
        assert_eq!(digits, vec![1, 2345, 6780]);
        // Zero of any sign is positive with no digits; its scale stays.
        assert_eq!(numeric_bytes("-0.00"), numeric_bytes("0.00"));
        assert_eq!(&numeric_bytes("0.00")[4..6], &(0x8000u16 | (2 << 7)).to_ne_bytes());
        // 1e3 is 1000 with scale 0; 1.5e1 is 15; 15e-1 is 1.5 with scale 1.
        assert_eq!(numeric_bytes("1e3"), numeric_bytes("1000"));
        assert_eq!(numeric_bytes("1.5e1"), numeric_bytes("15"));
        assert_eq!(numeric_bytes("15e-1"), numeric_bytes("1.5"));
        // 10000 is one group 1 of weight 1 (trailing zero group dropped).
        let n = numeric_bytes("10000");
        assert_eq!(n.len(), 8);
        assert_eq!(&n[4..6], &(0x8000u16 | 1).to_ne_bytes());
        // Negative weights: 0.0001 is the group 1 at weight -1.
        let n = numeric_bytes("0.0001");
        assert_eq!(&n[4..6], &(0x8000u16 | (4 << 7) | 0x0040 | (-1i16 as u16 & 0x3F)).to_ne_bytes());
        // A scale over 63 needs the long header.
        let long = format!("0.{}1", "0".repeat(70));
        assert_eq!(numeric_bytes(&long).len(), 4 + 4 + 2);
    }
}
