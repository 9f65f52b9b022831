import { CaphostError, ErrorCode } from '../errors.js';

export interface WordPieceOptions {
  /** Lower-case the text (BERT's do_lower_case). Default true. */
  readonly lowerCase?: boolean;
  /** Strip accents (NFD, then drop non-spacing marks). Default: the value of lowerCase, as in Hugging Face's BertTokenizer. */
  readonly stripAccents?: boolean;
  /** Put spaces around CJK ideographs so each is a word. Default true. */
  readonly tokenizeChineseChars?: boolean;
  /** A word longer than this many characters becomes [UNK]. Default 100 (Hugging Face; Google's reference uses 200). */
  readonly maxInputCharsPerWord?: number;
  readonly unkToken?: string;
  readonly clsToken?: string;
  readonly sepToken?: string;
  readonly padToken?: string;
  /** Words that are never lower-cased or split (default: the special tokens), when whitespace separates them. */
  readonly neverSplit?: readonly string[];
}

export interface EncodeOptions {
  /** Longest sequence, [CLS] and [SEP] included; longer input is truncated (the longer of a pair first). Default 512. */
  readonly maxLength?: number;
}

export interface BatchEncodeOptions extends EncodeOptions {
  /** 'longest' pads to the longest sequence of the batch; 'max_length' pads every sequence to maxLength. Default 'longest'. */
  readonly padding?: 'longest' | 'max_length';
}

/** One sequence of token ids and its segment ids. */
export interface Encoding {
  readonly ids: number[];
  readonly tokenTypeIds: number[];
}

/** A padded batch, row-major [batch, seqLen]: the layout an encoder's embedding gather and attention mask take. */
export interface EncodedBatch {
  readonly batch: number;
  readonly seqLen: number;
  readonly inputIds: Int32Array;
  /** 1 for a real token, 0 for padding. */
  readonly attentionMask: Int32Array;
  readonly tokenTypeIds: Int32Array;
  /** Real tokens per row. */
  readonly lengths: Int32Array;
}

// BERT treats every non-letter/number ASCII character as punctuation, beside Unicode's P* classes.
const PUNCTUATION = /\p{P}/u;
const CONTROL = /[\p{Cc}\p{Cf}]/u;
const SPACE_SEPARATOR = /\p{Zs}/u;
const NON_SPACING_MARK = /\p{Mn}/gu;
// After cleaning, what Python's str.split() still splits on: the space, and the line and paragraph separators.
const WHITESPACE_RUN = /[ \u2028\u2029]+/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

function isPunctuation(ch: string, cp: number): boolean {
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return true;
  return cp > 127 && PUNCTUATION.test(ch);
}

function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/**
 * BERT's tokenizer: BasicTokenizer (clean, CJK split, lower-case, strip accents, split on
 * punctuation) then greedy longest-match-first WordPiece over a vocab.txt, one token per line,
 * whose line number is its id. Behaves as Google's reference and Hugging Face's BertTokenizer do.
 */
export class WordPieceTokenizer {
  readonly vocab: ReadonlyMap<string, number>;
  readonly unkId: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
  private readonly lowerCase: boolean;
  private readonly stripAccents: boolean;
  private readonly chinese: boolean;
  private readonly maxChars: number;
  private readonly unk: string;
  private readonly neverSplit: ReadonlySet<string>;

  constructor(vocab: ReadonlyMap<string, number>, options: WordPieceOptions = {}) {
    this.vocab = vocab;
    this.lowerCase = options.lowerCase ?? true;
    this.stripAccents = options.stripAccents ?? this.lowerCase;
    this.chinese = options.tokenizeChineseChars ?? true;
    this.maxChars = options.maxInputCharsPerWord ?? 100;
    this.unk = options.unkToken ?? '[UNK]';
    const special = (name: string, token: string): number => {
      const id = vocab.get(token);
      if (id === undefined) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `the vocabulary has no ${name} token "${token}"; pass options.${name}Token if it is spelled differently`, { details: { token } });
      return id;
    };
    this.unkId = special('unk', this.unk);
    const cls = options.clsToken ?? '[CLS]';
    const sep = options.sepToken ?? '[SEP]';
    const pad = options.padToken ?? '[PAD]';
    this.clsId = special('cls', cls);
    this.sepId = special('sep', sep);
    this.padId = special('pad', pad);
    this.neverSplit = new Set(options.neverSplit ?? [this.unk, cls, sep, pad, '[MASK]']);
  }

  /** Reads vocab.txt text: one token per line, its id the line number (a trailing empty line is not a token). */
  static fromVocabText(text: string, options: WordPieceOptions = {}): WordPieceTokenizer {
    const lines = text.split('\n');
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    const vocab = new Map<string, number>();
    lines.forEach((line, id) => {
      const token = line.endsWith('\r') ? line.slice(0, -1) : line;
      // A duplicate keeps its last id, as BERT's load_vocab does.
      vocab.set(token, id);
    });
    return new WordPieceTokenizer(vocab, options);
  }

  /** BasicTokenizer: the words and punctuation of `text`, before WordPiece. */
  basicTokenize(text: string): string[] {
    // Printable ASCII has no control, CJK or separator characters to clean and is unchanged by
    // NFC and NFD: only the whitespace split, lower-casing and punctuation split apply.
    const printableAscii = PRINTABLE_ASCII.test(text);
    let cleaned = printableAscii ? text : '';
    if (!printableAscii) for (const ch of text) {
      const cp = ch.codePointAt(0)!;
      if (cp === 0x20 || cp === 0x09 || cp === 0x0a || cp === 0x0d) cleaned += ' ';
      else if (cp === 0 || cp === 0xfffd || (cp < 0x20 || cp >= 0x7f ? CONTROL.test(ch) : false)) continue;
      else if (cp > 127 && SPACE_SEPARATOR.test(ch)) cleaned += ' ';
      else if (this.chinese && cp >= 0x3400 && isChineseChar(cp)) cleaned += ` ${ch} `;
      else cleaned += ch;
    }
    const out: string[] = [];
    // Hugging Face composes first, so that one character spelled two ways is one token.
    for (let word of (printableAscii ? cleaned : cleaned.normalize('NFC')).split(WHITESPACE_RUN)) {
      if (word.length === 0) continue;
      if (this.neverSplit.has(word)) {
        out.push(word);
        continue;
      }
      if (this.lowerCase) word = word.toLowerCase();
      if (this.stripAccents && !printableAscii) word = word.normalize('NFD').replace(NON_SPACING_MARK, '');
      let current = '';
      for (const ch of word) {
        if (isPunctuation(ch, ch.codePointAt(0)!)) {
          if (current.length > 0) out.push(current);
          current = '';
          out.push(ch);
        } else current += ch;
      }
      if (current.length > 0) out.push(current);
    }
    return out;
  }

  /** WordPiece over one word: greedy longest match first, continuation pieces prefixed "##"; a word with no split is [UNK]. */
  wordPiece(word: string): string[] {
    // Most words are one vocabulary entry.
    if (word.length <= this.maxChars && this.vocab.has(word)) return [word];
    const chars = Array.from(word);
    if (chars.length > this.maxChars) return [this.unk];
    const pieces: string[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found: string | undefined;
      while (start < end) {
        const piece = (start > 0 ? '##' : '') + chars.slice(start, end).join('');
        if (this.vocab.has(piece)) {
          found = piece;
          break;
        }
        end--;
      }
      if (found === undefined) return [this.unk];
      pieces.push(found);
      start = end;
    }
    return pieces;
  }

  /** The word pieces of `text`, without special tokens. */
  tokenize(text: string): string[] {
    const out: string[] = [];
    for (const word of this.basicTokenize(text)) {
      if (this.neverSplit.has(word)) out.push(word);
      else for (const piece of this.wordPiece(word)) out.push(piece);
    }
    return out;
  }

  tokensToIds(tokens: readonly string[]): number[] {
    return tokens.map((t) => this.vocab.get(t) ?? this.unkId);
  }

  /**
   * `[CLS] a [SEP]` (or `[CLS] a [SEP] b [SEP]` with segment ids 0 then 1), truncated to maxLength
   * by dropping tokens from the end of the longer sequence first (Hugging Face's 'longest_first').
   */
  encode(text: string, pair?: string, options: EncodeOptions = {}): Encoding {
    const maxLength = options.maxLength ?? 512;
    const special = pair === undefined ? 2 : 3;
    if (!Number.isInteger(maxLength) || maxLength < special) {
      throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `maxLength must be an integer of at least ${special} (room for the special tokens), got ${maxLength}`);
    }
    const a = this.tokensToIds(this.tokenize(text));
    const b = pair === undefined ? [] : this.tokensToIds(this.tokenize(pair));
    let excess = a.length + b.length + special - maxLength;
    while (excess-- > 0) {
      if (a.length > b.length) a.pop();
      else b.pop();
    }
    const ids = [this.clsId, ...a, this.sepId];
    const tokenTypeIds = new Array<number>(ids.length).fill(0);
    if (pair !== undefined) {
      ids.push(...b, this.sepId);
      for (let i = 0; i <= b.length; i++) tokenTypeIds.push(1);
    }
    return { ids, tokenTypeIds };
  }

  /** Encodes each text and pads the batch, with attention masks. */
  encodeBatch(texts: readonly string[], options: BatchEncodeOptions = {}): EncodedBatch {
    const encodings = texts.map((t) => this.encode(t, undefined, options));
    return this.pad(encodings, options.padding === 'max_length' ? (options.maxLength ?? 512) : Math.max(1, ...encodings.map((e) => e.ids.length)));
  }

  /** Packs encodings into one [batch, seqLen] block, padding with [PAD] and mask 0. */
  pad(encodings: readonly Encoding[], seqLen: number): EncodedBatch {
    const batch = encodings.length;
    const inputIds = new Int32Array(batch * seqLen).fill(this.padId);
    const attentionMask = new Int32Array(batch * seqLen);
    const tokenTypeIds = new Int32Array(batch * seqLen);
    const lengths = new Int32Array(batch);
    encodings.forEach((e, row) => {
      const n = Math.min(e.ids.length, seqLen);
      lengths[row] = n;
      inputIds.set(e.ids.slice(0, n), row * seqLen);
      tokenTypeIds.set(e.tokenTypeIds.slice(0, n), row * seqLen);
      attentionMask.fill(1, row * seqLen, row * seqLen + n);
    });
    return { batch, seqLen, inputIds, attentionMask, tokenTypeIds, lengths };
  }
}
