// Both transports deliver an ApiResult; the UI wants a value or an
// exception. This is the one place a failed result becomes an ApiError.
import { ApiError, type ApiMethod, type ApiResponse, type ApiResult } from '../../../electron/api/contract.js';

export function unwrap<M extends ApiMethod>(result: ApiResult<M>): ApiResponse<M> {
  if (result.ok) return result.value;
  throw new ApiError(result.error);
}

/** An ApiError for a failure of the transport itself (no server answer to unwrap). */
export function transportError(message: string): ApiError {
  return new ApiError({ message, code: 'failed' });
}
