// Credentials GardenOS reads from files the user keeps, never from gardenos.yaml: an S3 access key for the backup
// repository (backups.repository.s3.credentialsFile). The file must be readable by its owner only, as SSH insists
// of a private key: a key that others could read is refused, naming the file and the fix.
import { readFile, stat } from 'node:fs/promises';
import { z } from 'zod';
import { GardenError } from '../errors.ts';

const s3CredentialsSchema = z.strictObject({
  accessKeyId: z.string().min(1, 'is empty'),
  secretAccessKey: z.string().min(1, 'is empty'),
});
export type S3Credentials = z.infer<typeof s3CredentialsSchema>;

export async function readS3Credentials(file: string): Promise<S3Credentials> {
  const st = await stat(file).catch((e: NodeJS.ErrnoException) => {
    throw new GardenError('CONFIG_NOT_FOUND', `backups.repository.s3.credentialsFile ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, {
      hint: `write it with the S3 access key, readable by you only: umask 077; printf '{"accessKeyId":"…","secretAccessKey":"…"}' > ${file}`,
    });
  });
  if (!st.isFile()) throw new GardenError('CONFIG_INVALID', `backups.repository.s3.credentialsFile ${file} is not a file`);
  if (st.mode & 0o077)
    throw new GardenError('CONFIG_INVALID', `backups.repository.s3.credentialsFile ${file} can be read by others (mode ${(st.mode & 0o777).toString(8)})`, {
      hint: `chmod 600 ${file}`,
    });
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new GardenError('CONFIG_INVALID', `backups.repository.s3.credentialsFile ${file} is not JSON: ${(e as Error).message}`, {
      hint: 'it holds {"accessKeyId": "…", "secretAccessKey": "…"}',
    });
  }
  const parsed = s3CredentialsSchema.safeParse(json);
  if (!parsed.success)
    throw new GardenError('CONFIG_INVALID', `backups.repository.s3.credentialsFile ${file} is not an S3 access key`, {
      // The paths and messages only: never the values.
      details: parsed.error.issues.map((i) => `${i.path.join('.') || '(the file)'}: ${i.message}`),
      hint: 'it holds {"accessKeyId": "…", "secretAccessKey": "…"}',
    });
  return parsed.data;
}
