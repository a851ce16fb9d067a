import { api } from "@/lib/api";

/** One of a profile's photos, as the api's square thumbnail. */
export function ProfilePhoto({ profileId, position, alt, size = 256 }: { profileId: string; position: number; alt: string; size?: number }) {
  return <img src={api().photoUrl(profileId, position, size)} alt={alt} width={size} height={size} loading="lazy" className="photo" />;
}
