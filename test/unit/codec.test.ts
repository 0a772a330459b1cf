import { DecodeError } from 'cloudmom';
import { describe, expect, it } from 'vitest';
import { CodecRegistry, jsonCodec, mediaType, textCodec } from '../../src/codec.ts';

describe('codecs', () => {
  const reg = new CodecRegistry();

  it('picks the codec by body kind', () => {
    expect(reg.forBody(new Uint8Array([1])).contentType).toBe('application/octet-stream');
    expect(reg.forBody('s').contentType).toBe('text/plain; charset=utf-8');
    expect(reg.forBody({ a: 1 }).contentType).toBe('application/json');
    expect(reg.forBody(null).contentType).toBe('application/json');
  });

  it('matches content types without parameters and case', () => {
    expect(mediaType('Application/JSON; charset=utf-8')).toBe('application/json');
    expect(reg.get('TEXT/plain')).toBe(textCodec);
  });

  it('refuses what a codec cannot encode with DecodeError', () => {
    expect(() => jsonCodec.encode(10n)).toThrow(DecodeError);
    expect(() => jsonCodec.encode(undefined)).toThrow(DecodeError);
    expect(() => textCodec.encode(12)).toThrow(DecodeError);
    expect(() => reg.forBody('x', 'application/x-unknown')).toThrow(/no codec/);
  });

  it('refuses undecodable bytes with DecodeError', () => {
    expect(() =>
      reg.decodeMessage({
        body: new TextEncoder().encode('{bad'),
        contentType: 'application/json',
      }),
    ).toThrow(DecodeError);
    expect(() =>
      reg.decodeMessage({ body: new Uint8Array([0xff, 0xfe]), contentType: 'text/plain' }),
    ).toThrow(DecodeError);
    expect(() =>
      reg.decodeMessage({ body: new Uint8Array([1]), contentType: 'application/x-unknown' }),
    ).toThrow(DecodeError);
  });

  it('reads a missing content type as JSON', () => {
    expect(
      reg.decodeMessage({ body: new TextEncoder().encode('[1]'), contentType: undefined }),
    ).toEqual([1]);
  });

  it('lets a registered codec override a built-in one', () => {
    const custom = {
      contentType: 'application/json',
      encode: () => new Uint8Array([1]),
      decode: () => 'custom',
    };
    expect(
      new CodecRegistry([custom]).decodeMessage({
        body: new Uint8Array(),
        contentType: 'application/json',
      }),
    ).toBe('custom');
  });
});

describe('utf8Length', () => {
  it('agrees with TextEncoder, surrogate pairs and lone surrogates included', async () => {
    const { utf8Length } = await import('../../src/broker.ts');
    for (const s of [
      '',
      'ascii',
      'ünï',
      '日本語',
      '😀 emoji',
      '\ud800 lone',
      'end \udc00',
      'x\ud83d',
      // beyond 12 characters (Node's native count)
      'a longer ascii string',
      'ünïcödé ünïcödé ünïcödé',
      '😀😀😀😀😀😀😀😀 emoji',
      'a lone \ud800 in a long one',
      'a long one ending alone \udc00',
    ]) {
      expect(utf8Length(s), s).toBe(new TextEncoder().encode(s).byteLength);
    }
  });
});
