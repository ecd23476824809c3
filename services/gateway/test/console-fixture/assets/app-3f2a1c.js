console.log("lading console fixture");
