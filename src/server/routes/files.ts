/**
 * OpenAI's Files API, for batch input: `POST /v1/files` (multipart, purpose
 * `batch`, JSONL), `GET /v1/files[/:id]`, `GET /v1/files/:id/content`,
 * `DELETE /v1/files/:id`. A key sees only its own files. Uploads and downloads
 * stream through (jobs/file-store.ts): nothing holds a whole file.
 */
import { Readable } from 'node:stream';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { listPage } from '../../api/openai/list-page.ts';
import { GatewayError } from '../../core/errors.ts';
import { type FileRecord, FileRejectedError } from '../../jobs/file-store.ts';
import { requireKey } from '../auth.ts';
import type { GatewayContext } from '../context.ts';
import { listQuery, ownerOf } from './job-routes-shared.ts';

const FILE_ID = /^file-[a-f0-9]{24}$/;

/** A file as OpenAI's API shows it. */
export function fileObject(file: FileRecord): Record<string, unknown> {
  return {
    id: file.id,
    object: 'file',
    bytes: file.bytes,
    created_at: Math.floor(file.createdAt / 1000),
    expires_at: file.expiresAt === null ? null : Math.floor(file.expiresAt / 1000),
    filename: file.filename,
    purpose: file.purpose,
    status: 'processed',
    status_details: null,
  };
}

export async function registerFileRoutes(app: FastifyInstance, gw: GatewayContext): Promise<void> {
  const jobs = gw.jobs;
  const onRequest = requireKey(gw.keys);
  const maxBytes = jobs.config.batches.max_file_bytes;
  const retentionMs = jobs.config.retention_days * 86_400_000;

  await app.register(async (scope) => {
    // Multipart only in this scope: no other route accepts it.
    await scope.register(multipart, {
      limits: { fileSize: maxBytes + 1, files: 1, fields: 4, fieldSize: 1_024, parts: 5 },
    });

    scope.post('/v1/files', { onRequest }, async (request, reply) => {
      if (!request.isMultipart()) {
        throw new GatewayError(
          'invalid_request',
          'Upload the file as multipart/form-data with fields file and purpose',
        );
      }
      const keyId = ownerOf(request);
      let purpose: string | undefined;
      let stored: FileRecord | undefined;
      try {
        for await (const part of request.parts()) {
          if (part.type === 'field') {
            if (part.fieldname === 'purpose' && typeof part.value === 'string') purpose = part.value;
            continue;
          }
          if (part.fieldname !== 'file' || stored !== undefined) {
            part.file.resume();
            throw new GatewayError('invalid_request', 'Send exactly one file, in the field "file"', {
              param: 'file',
            });
          }
          stored = await jobs.files.writeBytes(
            {
              keyId,
              purpose: 'batch',
              filename: safeFilename(part.filename),
              expiresAt: Date.now() + retentionMs,
              maxBytes,
              publish: false,
            },
            part.file,
          );
        }
      } catch (error) {
        if (stored !== undefined) await jobs.files.delete(keyId, stored.id);
        throw uploadError(error);
      }
      if (stored === undefined)
        throw new GatewayError('invalid_request', 'No file in the upload', { param: 'file' });
      if (purpose !== 'batch') {
        await jobs.files.delete(keyId, stored.id);
        throw new GatewayError(
          'invalid_request',
          purpose === undefined
            ? 'purpose is required'
            : `purpose '${purpose.slice(0, 40)}' is not supported here: use batch`,
          { param: 'purpose' },
        );
      }
      await jobs.files.publish(stored.id);
      request.log.info({ fileId: stored.id, bytes: stored.bytes, lines: stored.lines }, 'file uploaded');
      reply.code(200);
      return fileObject(stored);
    });
  });

  app.get('/v1/files', { onRequest }, async (request) => {
    const query = listQuery(request.query);
    const purpose = (request.query as Record<string, unknown>).purpose;
    const files = await jobs.files.list(ownerOf(request), {
      purpose: typeof purpose === 'string' ? purpose : undefined,
      after: query.after,
      limit: query.limit + 1,
    });
    return listPage(files, query.limit, fileObject);
  });

  app.get('/v1/files/:id', { onRequest }, async (request) => fileObject(await ownFile(request)));

  app.get('/v1/files/:id/content', { onRequest }, async (request, reply) => {
    const file = await ownFile(request);
    reply.header('content-type', 'application/octet-stream');
    // No content-length: the stored text is the upload decoded (a UTF-8 byte-order mark is dropped), sent chunked.
    reply.header('content-disposition', `attachment; filename="${file.filename.replaceAll('"', '')}"`);
    return reply.send(Readable.from(jobs.files.chunks(file.id)));
  });

  app.delete('/v1/files/:id', { onRequest }, async (request) => {
    const file = await ownFile(request);
    await jobs.files.delete(file.keyId, file.id);
    return { id: file.id, object: 'file', deleted: true };
  });

  async function ownFile(request: FastifyRequest): Promise<FileRecord> {
    const id = (request.params as { id: string }).id;
    const file = FILE_ID.test(id) ? await jobs.files.get(ownerOf(request), id) : undefined;
    if (file === undefined)
      throw new GatewayError('not_found', `No such File object: ${id.slice(0, 64)}`, { param: 'id' });
    return file;
  }
}

/** A file name as shown back: printable, bounded, no path. */
function safeFilename(name: string | undefined): string {
  const base = (name ?? 'upload.jsonl').split(/[\\/]/).at(-1) ?? 'upload.jsonl';
  const printable = base.replace(/[^\x20-\x7e]/g, '_').slice(0, 200);
  return printable === '' ? 'upload.jsonl' : printable;
}

function uploadError(error: unknown): unknown {
  if (error instanceof FileRejectedError) {
    return error.code === 'file_too_large'
      ? new GatewayError('request_too_large', error.message)
      : new GatewayError('invalid_request', error.message, { param: 'file' });
  }
  const code = (error as { code?: string }).code;
  if (code === 'FST_REQ_FILE_TOO_LARGE')
    return new GatewayError('request_too_large', 'The file is too large');
  if (typeof code === 'string' && code.startsWith('FST_')) {
    return new GatewayError('invalid_request', 'The multipart upload is malformed', { param: 'file' });
  }
  return error;
}
