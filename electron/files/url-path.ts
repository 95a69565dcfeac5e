// A model or dataset given as a URL (https://, hf://, s3://...) is not a path:
// resolved as one it would name a folder under the working directory that does
// not exist. Nothing is downloaded (the app works offline); the message says
// how to get the files and what to give instead.

/** scheme://..., not a Windows drive path (C:\ or C:/, a one-letter "scheme"). */
const URL_LIKE = /^[a-z][a-z0-9+.-]+:\/\//i;

export function isUrlLike(value: string): boolean {
  return URL_LIKE.test(value.trim());
}

/**
 * The refusal of a URL given where a model folder or a dataset is expected
 * (`named`: how the caller names the setting, "--model"), or null when the value is not one.
 */
export function urlValueProblem(value: string, named: string, kind: 'model' | 'dataset'): string | null {
  if (!isUrlLike(value)) return null;
  const download = kind === 'model' ? 'hf download ORG/NAME' : 'hf download ORG/NAME --repo-type dataset';
  const give = kind === 'model'
    ? 'its repo id (ORG/NAME: the Hugging Face cache is read) or the folder it was downloaded to'
    : 'its repo id (ORG/NAME: the Hugging Face cache is read), or the file or folder it was downloaded to';
  return `${named} ${value}: is a URL; URLs are not read and nothing is downloaded. Download it first (for the Hugging Face hub: ${download}), then give ${give}`;
}
