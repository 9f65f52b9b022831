import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WordPieceTokenizer } from '../../src/inference/wordpiece-tokenizer.js';

// The cases of Google's BERT reference tests (tokenization_test.py) and Hugging Face's
// test_tokenization_bert.py, with the outputs those implementations give.
const REFERENCE_VOCAB = ['[UNK]', '[CLS]', '[SEP]', 'want', '##want', '##ed', 'wa', 'un', 'runn', '##ing', ',', 'low', 'lowest', '[PAD]'];
const vocabText = (tokens: readonly string[]): string => tokens.map((t) => `${t}\n`).join('');
const reference = (options = {}) => WordPieceTokenizer.fromVocabText(vocabText(REFERENCE_VOCAB), options);

describe('WordPieceTokenizer: BasicTokenizer', () => {
  it('lower-cases, splits punctuation and whitespace', () => {
    assert.deepEqual(reference().basicTokenize(' \tHeLLo!how  \n Are yoU?  '), ['hello', '!', 'how', 'are', 'you', '?']);
    assert.deepEqual(reference().basicTokenize('H\u00E9llo'), ['hello']);
  });

  it('keeps case and accents when told', () => {
    assert.deepEqual(reference({ lowerCase: false }).basicTokenize(' \tHeLLo!how  \n Are yoU?  '), ['HeLLo', '!', 'how', 'Are', 'yoU', '?']);
    assert.deepEqual(reference({ lowerCase: false }).basicTokenize(' \tHäLLo!how  \n Are yoU?  '), ['HäLLo', '!', 'how', 'Are', 'yoU', '?']);
  });

  it('strips accents (NFD, non-spacing marks dropped) separately from lower-casing', () => {
    assert.deepEqual(reference({ lowerCase: true, stripAccents: false }).basicTokenize(' \tHäLLo!how  \n Are yoU?  '), ['hällo', '!', 'how', 'are', 'you', '?']);
    assert.deepEqual(reference({ lowerCase: true, stripAccents: true }).basicTokenize(' \tHäLLo!how  \n Are yoU?  '), ['hallo', '!', 'how', 'are', 'you', '?']);
    assert.deepEqual(reference({ lowerCase: false, stripAccents: true }).basicTokenize(' \tHäLLo!how  \n Are yoU?  '), ['HaLLo', '!', 'how', 'Are', 'yoU', '?']);
    // The same letter written decomposed or composed is one token.
    assert.deepEqual(reference({ lowerCase: false }).basicTokenize('Cafe\u0301 Caf\u00E9'), ['Caf\u00E9', 'Caf\u00E9']);
  });

  it('puts each CJK ideograph in a word of its own', () => {
    assert.deepEqual(reference().basicTokenize('ah\u535A\u63A8zz'), ['ah', '\u535A', '\u63A8', 'zz']);
    // A supplementary-plane ideograph (U+20000) is one character, not two halves.
    assert.deepEqual(reference().basicTokenize('a\u{20000}b'), ['a', '\u{20000}', 'b']);
    assert.deepEqual(reference({ tokenizeChineseChars: false }).basicTokenize('ah\u535A\u63A8zz'), ['ah\u535A\u63A8zz']);
  });

  it('treats all non-alphanumeric ASCII and Unicode P* as punctuation; removes control characters', () => {
    assert.deepEqual(reference().basicTokenize('a-b$c`d.e^f'), ['a', '-', 'b', '$', 'c', '`', 'd', '.', 'e', '^', 'f']);
    assert.deepEqual(reference().basicTokenize('\u00BFqu\u00E9?\u2014s\u00ED\u00A1'), ['\u00BF', 'que', '?', '\u2014', 'si', '\u00A1']);
    assert.deepEqual(reference().basicTokenize('a\u0005b\u0000c\uFFFDd\u200Be'), ['abcde']);
    // No-break space and other Zs separators are whitespace, as are \t \r \n.
    assert.deepEqual(reference().basicTokenize('a\u00A0b\u3000c\rd\te\nf'), ['a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('never splits the special tokens', () => {
    assert.deepEqual(reference({ lowerCase: false }).basicTokenize(' \tHeLLo!how  \n Are yoU? [UNK]'), ['HeLLo', '!', 'how', 'Are', 'yoU', '?', '[UNK]']);
    assert.deepEqual(reference().tokenize('[CLS] unwanted [SEP]'), ['[CLS]', 'un', '##want', '##ed', '[SEP]']);
  });
});

describe('WordPieceTokenizer: WordPiece', () => {
  it('splits greedily, longest match first', () => {
    const t = reference();
    assert.deepEqual(t.tokenize(''), []);
    assert.deepEqual(t.tokenize('unwanted running'), ['un', '##want', '##ed', 'runn', '##ing']);
    assert.deepEqual(t.tokenize('unwantedX running'), ['[UNK]', 'runn', '##ing']);
    assert.deepEqual(t.tokenize('lowest low'), ['lowest', 'low']);
  });

  it('matches the reference full tokenizer, ids included', () => {
    const t = reference();
    const tokens = t.tokenize('UNwant\u00E9d,running');
    assert.deepEqual(tokens, ['un', '##want', '##ed', ',', 'runn', '##ing']);
    assert.deepEqual(t.tokensToIds(tokens), [7, 4, 5, 10, 8, 9]);
  });

  it('makes a word longer than maxInputCharsPerWord [UNK]', () => {
    assert.deepEqual(reference({ maxInputCharsPerWord: 5 }).tokenize('want wanted'), ['want', '[UNK]']);
    assert.deepEqual(reference({ maxInputCharsPerWord: 6 }).tokenize('want wanted'), ['want', 'want', '##ed']);
  });
});

describe('WordPieceTokenizer: encoding', () => {
  it('adds [CLS] and [SEP], and truncates to maxLength', () => {
    const t = reference();
    assert.deepEqual(t.encode('unwanted running'), { ids: [1, 7, 4, 5, 8, 9, 2], tokenTypeIds: [0, 0, 0, 0, 0, 0, 0] });
    assert.deepEqual(t.encode('unwanted running', undefined, { maxLength: 4 }).ids, [1, 7, 4, 2]);
    assert.deepEqual(t.encode('', undefined, { maxLength: 2 }).ids, [1, 2]);
    assert.throws(() => t.encode('a', undefined, { maxLength: 1 }), /maxLength must be an integer of at least 2/);
  });

  it('encodes a pair with segment ids, truncating the longer side first', () => {
    const t = reference();
    assert.deepEqual(t.encode('want', 'running'), { ids: [1, 3, 2, 8, 9, 2], tokenTypeIds: [0, 0, 0, 1, 1, 1] });
    // 3 + 2 tokens + 3 special = 8 > 7: one goes, from the longer first sequence.
    assert.deepEqual(t.encode('unwanted', 'running', { maxLength: 7 }).ids, [1, 7, 4, 2, 8, 9, 2]);
  });

  it('pads a batch to its longest row with [PAD] and a zero mask', () => {
    const t = reference();
    const b = t.encodeBatch(['unwanted running', 'low', '']);
    assert.equal(b.batch, 3);
    assert.equal(b.seqLen, 7);
    assert.deepEqual([...b.inputIds], [1, 7, 4, 5, 8, 9, 2, 1, 11, 2, 13, 13, 13, 13, 1, 2, 13, 13, 13, 13, 13]);
    assert.deepEqual([...b.attentionMask], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
    assert.deepEqual([...b.lengths], [7, 3, 2]);
    assert.deepEqual([...b.tokenTypeIds], new Array(21).fill(0));
    const fixed = t.encodeBatch(['low'], { padding: 'max_length', maxLength: 5 });
    assert.deepEqual([...fixed.inputIds], [1, 11, 2, 13, 13]);
  });

  it('reads vocab.txt with CRLF line ends and refuses a vocabulary without its special tokens', () => {
    const t = WordPieceTokenizer.fromVocabText(REFERENCE_VOCAB.join('\r\n'));
    assert.equal(t.vocab.get('##ing'), 9);
    assert.equal(t.padId, 13);
    assert.throws(() => WordPieceTokenizer.fromVocabText('[UNK]\n[CLS]\n[SEP]\n'), /no pad token "\[PAD\]"/);
  });
});
